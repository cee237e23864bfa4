"""What the clients of a replay saw, and the ratios computed from it with the origin's
counters. Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def edge_hit(cache_status: str) -> bool:
    """Whether the cache nearest the client served the response: the last member of
    ``Cache-Status`` (RFC 9211 2: members are in order from the origin to the client)
    carries the ``hit`` parameter. Every stack in the replay sends this field."""
    if not cache_status:
        return False
    last = cache_status.rsplit(",", 1)[-1]
    return any(p.strip() == "hit" for p in last.split(";")[1:])


@dataclass
class Tally:
    """Counters over the requests sent: ``latencies`` in seconds (of complete 200s),
    ``errors`` by kind, ``by_edge`` requests per edge address."""

    requests: int = 0
    complete: int = 0
    requested_bytes: int = 0
    received_bytes: int = 0
    edge_hits: int = 0
    edge_hit_bytes: int = 0
    late: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    by_edge: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def record(self, *, edge: str, size: int, status: int, received: int,
               cache_status: str, latency: float) -> None:
        """One response to a request for ``size`` bytes: complete when it is a 200 with
        exactly ``size`` body bytes."""
        self.requests += 1
        self.requested_bytes += size
        self.received_bytes += received
        self.by_edge[edge] = self.by_edge.get(edge, 0) + 1
        if status != 200:
            self.error(f"status {status}")
            return
        if received != size:
            self.error("wrong size")
            return
        self.complete += 1
        self.latencies.append(latency)
        if edge_hit(cache_status):
            self.edge_hits += 1
            self.edge_hit_bytes += size

    def failed(self, *, edge: str, size: int, kind: str) -> None:
        """A request that got no response (``kind``: the exception's class name)."""
        self.requests += 1
        self.requested_bytes += size
        self.by_edge[edge] = self.by_edge.get(edge, 0) + 1
        self.error(kind)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0-100, nearest rank) of the latencies, ms."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


@dataclass(frozen=True)
class OriginCounts:
    """Requests the origin answered and body bytes it sent during the replay."""

    requests: int
    bytes: int


def summary(t: Tally, origin: OriginCounts, *, wall: float, cpu: float, peak_rss: int,
            catalogue: OriginCounts | None = None) -> dict[str, float | int | dict[str, int]]:
    """The reported numbers: hit ratios (edge tier from ``Cache-Status``, whole CDN from
    the origin's counters), latency, requests per CPU-second of the CDN's processes,
    peak RSS in bytes; with ``catalogue`` (distinct objects and bytes) also the best hit
    ratios any cache could reach from cold (every distinct object missed once)."""
    n = max(1, t.requests)
    nbytes = max(1, t.requested_bytes)
    bounds = {} if catalogue is None else {
        "ohr_bound": 1 - catalogue.requests / n, "bhr_bound": 1 - catalogue.bytes / nbytes}
    return {**bounds,
        "requests": t.requests,
        "complete": t.complete,
        "errors": dict(t.errors),
        "late": t.late,
        "requested_bytes": t.requested_bytes,
        "edge_ohr": t.edge_hits / n,
        "edge_bhr": t.edge_hit_bytes / nbytes,
        "cdn_ohr": 1 - origin.requests / n,
        "cdn_bhr": 1 - origin.bytes / nbytes,
        "origin_requests_per_request": origin.requests / n,
        "origin_bytes_per_request": origin.bytes / n,
        "origin_requests": origin.requests,
        "origin_bytes": origin.bytes,
        "p50_ms": t.percentile_ms(50),
        "p99_ms": t.percentile_ms(99),
        "wall_s": wall,
        "cpu_s": cpu,
        "requests_per_cpu_s": t.requests / cpu if cpu > 0 else float("nan"),
        "peak_rss_bytes": peak_rss,
        "by_edge": dict(sorted(t.by_edge.items())),
    }


def problems(t: Tally, origin: OriginCounts, *, planned: int, planned_bytes: int,
             catalogue: OriginCounts | None = None) -> list[str]:
    """What makes a replay's numbers inconsistent (empty when they hold): every planned
    request answered, each a 200 with the trace's size, hits and misses adding up, and
    the origin sending no more requests or bytes than the clients asked for, and, when
    ``catalogue`` (distinct objects and their bytes) is given, at least that much, as
    cold caches must fetch every object once."""
    out = []
    if t.requests != planned:
        out.append(f"{t.requests} requests recorded, {planned} planned")
    if t.requested_bytes != planned_bytes:
        out.append(f"{t.requested_bytes} bytes asked for, {planned_bytes} planned")
    if t.errors:
        out.append(f"failed responses: {t.errors}")
    # Hits are counted among complete responses, so hits + misses is ``complete``.
    if t.complete + sum(t.errors.values()) != t.requests or t.edge_hits > t.complete:
        out.append(f"hits {t.edge_hits} + misses {t.complete - t.edge_hits} + errors"
                   f" != {t.requests} requests")
    if t.received_bytes != t.requested_bytes and not t.errors:
        out.append(f"received {t.received_bytes} bytes, asked for {t.requested_bytes}")
    if origin.requests > t.requests:
        out.append(f"origin answered {origin.requests} requests for {t.requests} sent")
    if origin.bytes > t.requested_bytes:
        out.append(f"origin sent {origin.bytes} bytes, clients asked for {t.requested_bytes}")
    if origin.requests == 0 and t.requests:
        out.append("the origin answered nothing: the replay did not reach it")
    if catalogue is not None and (origin.requests < catalogue.requests
                                  or origin.bytes < catalogue.bytes):
        out.append(f"origin sent {origin.requests} objects ({origin.bytes} bytes), fewer than"
                   f" the {catalogue.requests} distinct ones ({catalogue.bytes} bytes)")
    return out
