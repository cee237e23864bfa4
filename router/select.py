"""Choosing edges for one answer. Pure: a table snapshot, the client prefix and ``now``
(monotonic seconds) in, a :class:`Choice` out.

Order of preference:

1. Edges that are up and not overloaded, by expected latency: the RTT the edge reported
   for the client's prefix when there is a fresh sample, else the router's probe RTT.
   Edges within ``tolerance_ms`` of the fastest count as equally fast and are ordered by
   a hash of (prefix, edge), which spreads clients over equivalent edges while keeping
   each prefix on one edge. A suspect edge (up, but its last probe failed), an edge
   not probed yet and one in its slow start after failed probes rank after every edge
   seen steadily healthy.
2. When none qualifies: the configured fallback addresses if every edge of the family is
   down, otherwise the least-bad edge (up but overloaded, least loaded first; then down
   but still answering HTTP; then the shortest failure streak). The answer is never
   empty while an edge exists.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from router.ecs import PrefixKey
from router.table import EdgeView, TableSnapshot


@dataclass(frozen=True, slots=True)
class Choice:
    """Chosen ``addresses`` with, per address, the ``edges`` name ("fallback" for a
    configured fallback) and the ``reasons`` label ("client_rtt", "probe_rtt", "no_rtt",
    "overloaded", "down", "fallback"). ``valid_until`` (monotonic seconds) is when a
    client RTT sample used here ages out; ``depends_on_client`` is false when the choice
    would be the same for every client prefix (ECS scope 0)."""

    addresses: tuple[str, ...]
    edges: tuple[str, ...]
    reasons: tuple[str, ...]
    valid_until: float = math.inf
    depends_on_client: bool = True


def _tiebreak(prefix: PrefixKey, name: str) -> int:
    return zlib.crc32(f"{prefix[0]}:{prefix[1]}:{name}".encode())


def choose(
    snapshot: TableSnapshot,
    version: int,
    prefix: PrefixKey,
    now: float,
    *,
    count: int = 1,
    tolerance_ms: float = 2.0,
    sample_max_age: float = 300.0,
    fallback: Sequence[str] = (),
) -> Choice | None:
    """Pick up to ``count`` edges of IP ``version`` (4 or 6) for a client in ``prefix``.

    Returns None when the family has no edge and no fallback address (the answer is
    NODATA, RFC 2308 2.2)."""
    fallback = [a for a in fallback if (":" in a) == (version == 6)]
    candidates = snapshot.by_version.get(version, ())
    if not candidates:
        return _fallback_choice(fallback, count)
    eligible = [e for e in candidates if e.up and not e.overloaded]
    if not eligible:
        if fallback and not any(e.up for e in candidates):
            return _fallback_choice(fallback, count)
        worst = min(candidates, key=_badness)
        return Choice(
            (worst.address,),
            (worst.name,),
            ("overloaded" if worst.up else "down",),
            depends_on_client=False,
        )

    samples = snapshot.client_rtt.get(prefix, {})
    valid_until = math.inf
    scored: list[tuple[EdgeView, float, str]] = []
    for e in eligible:
        sample = samples.get(e.name)
        if sample is not None and now - sample[1] < sample_max_age:
            scored.append((e, sample[0], "client_rtt"))
            valid_until = min(valid_until, sample[1] + sample_max_age)
        elif e.probe_rtt_ms is not None:
            scored.append((e, e.probe_rtt_ms, "probe_rtt"))
        else:
            scored.append((e, math.inf, "no_rtt"))
    known = [lat for e, lat, _ in scored if not e.suspect and math.isfinite(lat)]
    best = min(known) if known else math.inf
    limit = best + tolerance_ms

    def rank(item: tuple[EdgeView, float, str]) -> tuple[bool, float, int]:
        e, lat, _ = item
        bucket = 0.0 if lat <= limit or (not known and not math.isfinite(lat)) else lat
        return e.suspect or not e.probed or e.recovering, bucket, _tiebreak(prefix, e.name)

    scored.sort(key=rank)
    top = scored[:count]
    return Choice(
        tuple(e.address for e, _, _ in top),
        tuple(e.name for e, _, _ in top),
        tuple(reason for _, _, reason in top),
        valid_until,
        depends_on_client=len(eligible) > count,
    )


def _badness(e: EdgeView) -> tuple[bool, bool, float, int, str]:
    # Up-but-overloaded beats down; a down edge that still answers HTTP (say, 503 while
    # it warms up) beats one that is gone; then lighter load, shorter failure streak.
    return (not e.up, not e.reachable, e.load_score, e.fail_streak, e.name)


def _fallback_choice(fallback: Sequence[str], count: int) -> Choice | None:
    if not fallback:
        return None
    addrs = tuple(fallback[:count])
    return Choice(
        addrs, ("fallback",) * len(addrs), ("fallback",) * len(addrs), depends_on_client=False
    )
