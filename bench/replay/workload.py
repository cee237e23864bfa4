"""What a replay sends, decided before anything runs (issue 23). Pure: no I/O.

A :class:`Workload` is a trace prefix with every size multiplied by ``size_scale``
(sizes in the traces are whole kilobytes, so 0.1 keeps objects of 100 bytes and more;
hit ratios depend on sizes only relative to the cache budget, which is scaled the
same way), each request given to one client of a seeded population, and, for the open
loop, a send time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.hit_ratio.traces import Trace


@dataclass(frozen=True)
class Workload:
    """``ids``/``sizes``/``times`` per request (sizes in bytes after scaling, times in
    trace seconds); ``clients[i]`` is the client that sends request ``i``."""

    name: str
    ids: list[int]
    sizes: list[int]
    times: list[int]
    clients: list[int]
    size_scale: float

    @property
    def requests(self) -> int:
        return len(self.ids)

    @property
    def requested_bytes(self) -> int:
        return sum(self.sizes)

    def distinct_objects(self) -> int:
        return len(set(self.ids))

    def distinct_bytes(self) -> int:
        """Bytes of the distinct objects (the catalogue cache sizes are fractions of)."""
        return sum(dict(zip(self.ids, self.sizes, strict=True)).values())


def scaled(size: int, scale: float) -> int:
    """``size`` bytes times ``scale``, at least 1 byte."""
    return max(1, round(size * scale))


def build(trace: Trace, *, size_scale: float, clients: int, seed: int = 23) -> Workload:
    """The replay of ``trace``: sizes scaled, request ``i`` sent by a client drawn
    uniformly from ``clients`` with a seeded RNG (the same clients for every stack).

    Raises:
        ValueError: ``size_scale`` not in (0, 1], ``clients`` < 1, or a trace without
            timestamps.
    """
    if not 0 < size_scale <= 1:
        raise ValueError(f"size_scale must be in (0, 1], not {size_scale}")
    if clients < 1:
        raise ValueError("clients must be at least 1")
    if len(trace.times) != trace.requests:
        raise ValueError(f"trace {trace.name} has no timestamps")
    rng = random.Random(seed)
    return Workload(
        name=trace.name,
        ids=list(trace.ids),
        sizes=[scaled(s, size_scale) for s in trace.sizes],
        times=list(trace.times),
        clients=[rng.randrange(clients) for _ in range(trace.requests)],
        size_scale=size_scale,
    )


@dataclass(frozen=True)
class Budgets:
    """Cache bytes per node: each edge gets ``edge_bytes``, each mid tier ``mid_bytes``."""

    total: int
    edge_bytes: int
    mid_bytes: int


def budgets(
    catalogue: int, fraction: float, *, edges: int, mids: int, edge_default: int,
    mid_default: int,
) -> Budgets:
    """``fraction`` of ``catalogue`` bytes split between the tiers in the proportion of
    the shipped defaults (``edges`` x ``edge_default`` against ``mids`` x
    ``mid_default`` bytes of memory), then evenly within a tier; at least 1 byte each.

    Raises:
        ValueError: ``fraction`` not in (0, 1], or no nodes in a tier.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"cache fraction must be in (0, 1], not {fraction}")
    if edges < 1 or mids < 1:
        raise ValueError("both tiers need at least one node")
    total = round(catalogue * fraction)
    edge_share = edges * edge_default / (edges * edge_default + mids * mid_default)
    return Budgets(
        total=total,
        edge_bytes=max(1, round(total * edge_share / edges)),
        mid_bytes=max(1, round(total * (1 - edge_share) / mids)),
    )


def send_times(times: list[int], rate: float) -> list[float]:
    """Open-loop send offsets in seconds from the start: the trace's timestamps, spread
    evenly within each second they share (the traces have 1 s resolution), then scaled
    so the mean rate is ``rate`` requests per second. Non-decreasing; the first is 0.

    Raises:
        ValueError: ``rate`` not positive.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    n = len(times)
    if n == 0:
        return []
    spread: list[float] = []
    i = 0
    while i < n:
        j = i
        while j < n and times[j] == times[i]:
            j += 1
        width = j - i
        spread.extend(times[i] + k / width for k in range(width))
        i = j
    start = spread[0]
    span = spread[-1] + 1.0 / max(1, width) - start
    factor = n / (rate * span) if span > 0 else 0.0
    return [(t - start) * factor for t in spread]


def object_path(prefix: str, oid: int, size: int) -> str:
    """The origin's synthetic-object path for ``oid`` of ``size`` bytes."""
    return f"{prefix}{oid}/{size}"
