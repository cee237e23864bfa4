"""The last hour of the network's numbers, kept in memory by the control plane.

:class:`StatsHistory` is a ring buffer of samples, one every ``interval`` seconds (3 by
default), covering ``window`` seconds (an hour). :func:`sample_forever` fills it: it asks
every registered node's admin port for ``/healthz`` and ``/status`` (the same probe as
``GET /v1/status``), turns the counters into rates against the previous sample, and
updates the control plane's gauges (``cdn_node_up``, ``cdn_node_health_changes_total``,
``cdn_failover_forced``). The task belongs to the app's lifecycle (a ``cleanup_ctx``
registered by :mod:`control_plane.routes.stats`); nothing survives a restart, which is
what Prometheus is for.

A point is ``{"t": unix seconds, "tiers": {tier: {"rps", "hit_ratio", "healthy",
"nodes"}}}``. ``rps`` is requests per second since the previous sample: client requests
for edges and mid tiers, requests answered for the origin, DNS answers for the router.
``hit_ratio`` (edges and mid tiers) is hits (fresh or stale) over cache lookups in that
interval, ``null`` without lookups. A counter that went down (a restarted node) counts
from zero.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from control_plane.db import DatabaseUnavailable, OutageNotice

log = logging.getLogger("cdn.control_plane.history")

DEFAULT_INTERVAL = 3.0
DEFAULT_WINDOW = 3600.0
CACHING_TIERS = ("edge", "mid")
HIT_STATUSES = ("hit", "stale")


@dataclass
class _Counters:
    t: float
    requests: float
    hits: float
    lookups: float


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def counters(tier: str, status: dict[str, Any] | None) -> tuple[float, float, float]:
    """``(requests, hits, lookups)`` from a node's ``/status`` body (zeros when absent)."""
    if not isinstance(status, dict):
        return 0.0, 0.0, 0.0
    if tier == "router":
        edges = status.get("edges") or []
        answers = sum(_num(e.get("answers")) for e in edges if isinstance(e, dict))
        return answers, 0.0, 0.0
    requests = _num(status.get("requests"))
    cache = status.get("cache")
    by_status = cache.get("requests_by_status") if isinstance(cache, dict) else None
    if not isinstance(by_status, dict):
        return requests, 0.0, 0.0
    hits = sum(_num(by_status.get(s)) for s in HIT_STATUSES)
    lookups = sum(_num(v) for s, v in by_status.items() if s != "pass")
    return requests, hits, lookups


def _delta(now: float, before: float) -> float:
    return now - before if now >= before else now  # a restart starts from zero


@dataclass
class StatsHistory:
    """Samples of the last ``window`` seconds and the latest view of every node."""

    interval: float = DEFAULT_INTERVAL
    window: float = DEFAULT_WINDOW
    points: deque[dict[str, Any]] = field(init=False)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    sampled_at: float | None = None
    _prev: dict[str, _Counters] = field(default_factory=dict)
    _healthy: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = deque(maxlen=max(2, int(self.window / self.interval) + 1))

    def record(self, t: float, entries: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
        """Add one sample: ``entries`` as ``GET /v1/status`` lists them. Returns the
        health changes since the previous sample as ``(name, tier, healthy)``."""
        tiers: dict[str, dict[str, Any]] = {}
        sums: dict[str, list[float]] = {}  # tier -> [d_requests, d_hits, d_lookups, dt]
        nodes = []
        changes = []
        seen = set()
        for e in entries:
            name, tier, healthy = str(e.get("name")), str(e.get("tier")), bool(e.get("healthy"))
            seen.add(name)
            status = e.get("status") if isinstance(e.get("status"), dict) else None
            agg = tiers.setdefault(tier, {"rps": None, "hit_ratio": None, "healthy": 0, "nodes": 0})
            agg["nodes"] += 1
            agg["healthy"] += int(healthy)
            was = self._healthy.get(name)
            if was is not None and was != healthy:
                changes.append((name, tier, healthy))
            self._healthy[name] = healthy
            rps = ratio = None
            if status is not None:
                req, hits, lookups = counters(tier, status)
                prev = self._prev.get(name)
                self._prev[name] = _Counters(t, req, hits, lookups)
                if prev is not None and t > prev.t:
                    dt = t - prev.t
                    d_req = _delta(req, prev.requests)
                    d_hits = _delta(hits, prev.hits)
                    d_look = _delta(lookups, prev.lookups)
                    rps = d_req / dt
                    ratio = d_hits / d_look if d_look > 0 else None
                    s = sums.setdefault(tier, [0.0, 0.0, 0.0, 0.0])
                    s[0] += rps
                    s[1] += d_hits
                    s[2] += d_look
            nodes.append(_node_view(e, status, rps, ratio))
        for name in list(self._prev):
            if name not in seen:
                del self._prev[name]
        for name in list(self._healthy):
            if name not in seen:
                del self._healthy[name]
        for tier, (rps_sum, hits, lookups, _) in sums.items():
            tiers[tier]["rps"] = round(rps_sum, 3)
            if tier in CACHING_TIERS and lookups > 0:
                tiers[tier]["hit_ratio"] = round(hits / lookups, 4)
        self.points.append({"t": t, "tiers": tiers})
        self.nodes = nodes
        self.sampled_at = t
        return changes

    def to_json(self, since: float | None = None) -> dict[str, Any]:
        """The ``GET /v1/stats/history`` body: points after ``since`` (all without it)."""
        points = [p for p in self.points if since is None or p["t"] > since]
        return {
            "interval": self.interval,
            "window": self.window,
            "sampled_at": self.sampled_at,
            "points": points,
            "nodes": self.nodes,
        }


def _node_view(
    e: dict[str, Any], status: dict[str, Any] | None, rps: float | None, ratio: float | None
) -> dict[str, Any]:
    st = status or {}
    cache = st.get("cache") if isinstance(st.get("cache"), dict) else {}
    failover = st.get("failover") if isinstance(st.get("failover"), dict) else None
    ups = st.get("upstreams") if isinstance(st.get("upstreams"), list) else []
    return {
        "name": e.get("name"),
        "tier": e.get("tier"),
        "host": e.get("host"),
        "port": e.get("port"),
        "healthy": bool(e.get("healthy")),
        "error": e.get("error"),
        "rps": None if rps is None else round(rps, 3),
        "hit_ratio": None if ratio is None else round(ratio, 4),
        "requests": st.get("requests"),
        "in_flight": st.get("in_flight"),
        "restarts": st.get("restarts"),
        "cache_entries": cache.get("entries"),
        "cache_bytes": cache.get("bytes"),
        "upstreams": [{"url": u.get("url"), "up": u.get("up")} for u in ups if isinstance(u, dict)],
        "failover_forced": None if failover is None else bool(failover.get("forced")),
    }


async def sample_forever(history: StatsHistory, sample: Any) -> None:
    """Call ``await sample()`` now and then every ``history.interval`` seconds; one
    failed round is logged (a database outage once) and the next one runs as usual."""
    outage = OutageNotice(log, "stats sampling")
    while True:
        try:
            await sample()
            outage.ok()
        except DatabaseUnavailable as exc:
            outage.failed(exc)
        except Exception:
            log.exception("stats sample failed")
        await asyncio.sleep(history.interval)
