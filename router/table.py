"""The edge table: each edge's health, round-trip times and load, plus the RTTs edges
report per client prefix. Pure state (no I/O, no asyncio): callers pass ``now``
(monotonic seconds) with every observation.

Everything the resolver reads is published as an immutable :class:`TableSnapshot` with a
``generation`` counter. The generation increases whenever anything the resolver reads
changes (health, suspicion, overload, published probe RTT, client RTTs, the edge set), so
an answer cache keyed by generation is never stale.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from router.config import HealthSettings, LatencySettings, LoadSettings
from router.ecs import PrefixKey, PrefixPolicy

ClientRtt = tuple[float, float]  # (EWMA RTT in ms, monotonic time of the newest sample)


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    """Where an edge is: ``address`` (answered in DNS), ``port`` (HTTP), ``probe_base``
    (admin base URL, no trailing slash), ``source`` ("config", "flag" or "control-plane")."""

    name: str
    address: str
    port: int
    probe_base: str
    source: str = "config"

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.address).version


@dataclass(frozen=True, slots=True)
class EdgeView:
    """What the resolver knows of one edge. ``probe_rtt_ms`` is None until a probe
    succeeded; ``suspect`` means up but its last probe failed; ``load_score`` (0..) is the
    worse of in-flight/high and cpu/high, used to rank overloaded edges; ``reachable``
    is false when the last probe got no HTTP answer at all (refused, timed out);
    ``recovering`` while in its slow start after failed probes (``health.slow_start``)."""

    name: str
    address: str
    version: int
    up: bool
    suspect: bool
    overloaded: bool
    probe_rtt_ms: float | None
    load_score: float
    fail_streak: int
    reachable: bool = True
    probed: bool = True
    recovering: bool = False


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    """An immutable view of the table at one ``generation``. ``by_version`` maps 4 and 6
    to that family's edges; ``client_rtt`` maps a client prefix to ``{edge: (rtt_ms,
    sampled_at)}``; ``degraded`` is true while any edge is down, suspect or overloaded,
    and during the first round of probes (:meth:`EdgeTable.end_first_round`) while any
    edge has not been probed: health not yet checked is not answered with the normal
    TTL."""

    generation: int
    edges: tuple[EdgeView, ...]
    by_version: Mapping[int, tuple[EdgeView, ...]]
    client_rtt: Mapping[PrefixKey, Mapping[str, ClientRtt]]
    degraded: bool


@dataclass(slots=True)
class _EdgeState:
    spec: EdgeSpec
    version: int
    up: bool = True  # never down before it was probed
    probed: bool = False
    successes: int = 0
    failures: int = 0
    reachable: bool = True
    rtt_ewma: float | None = None
    rtt_published: float | None = None
    last_probe_at: float | None = None
    recovering_until: float | None = None
    last_error: str | None = None
    in_flight: int = 0
    cpu: float = 0.0
    cpu_sample: tuple[float, float] | None = None  # (cpu_seconds, now)
    overloaded: bool = False
    load_score: float = 0.0
    load_at: float | None = None
    changes: dict[str, int] = field(default_factory=dict)

    def view(self) -> EdgeView:
        return EdgeView(
            name=self.spec.name,
            address=self.spec.address,
            version=self.version,
            up=self.up,
            suspect=self.up and self.failures > 0,
            overloaded=self.overloaded,
            probe_rtt_ms=self.rtt_published,
            load_score=self.load_score if self.overloaded else 0.0,
            fail_streak=self.failures,
            reachable=self.reachable,
            probed=self.probed,
            recovering=self.recovering_until is not None,
        )


class EdgeTable:
    """Mutable edge state; see the module docstring. Not thread-safe (one event loop)."""

    def __init__(
        self,
        health: HealthSettings,
        load: LoadSettings,
        latency: LatencySettings,
        edges: Iterable[EdgeSpec] = (),
    ) -> None:
        self._health = health
        self._load = load
        self._latency = latency
        self.prefixes = PrefixPolicy(latency.ipv4_prefix, latency.ipv6_prefix)
        self._edges: dict[str, _EdgeState] = {}
        self._client: dict[PrefixKey, Mapping[str, ClientRtt]] = {}
        self._generation = 0
        self._snapshot: TableSnapshot | None = None
        self._first_round = True
        self.set_edges(edges)

    # -- the edge set ------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return self._generation

    def end_first_round(self) -> None:
        """The first round of probes is over (every edge probed, or its time bound, run
        by the prober, passed): unprobed edges no longer make answers degraded."""
        if self._first_round:
            self._first_round = False
            self._bump()

    def _bump(self) -> None:
        self._generation += 1
        self._snapshot = None

    def invalidate(self) -> None:
        """Something answers depend on besides the edges changed (the service names):
        move the generation, so no cached answer or reply outlives it."""
        self._bump()

    def specs(self) -> list[EdgeSpec]:
        return [s.spec for s in self._edges.values()]

    def set_edges(self, specs: Iterable[EdgeSpec]) -> None:
        """Replace the edge set. Edges whose spec is unchanged keep their state; new or
        moved edges start fresh (up, unprobed)."""
        new: dict[str, _EdgeState] = {}
        for spec in specs:
            old = self._edges.get(spec.name)
            if old is not None and old.spec == spec:
                new[spec.name] = old
            else:
                new[spec.name] = _EdgeState(spec=spec, version=spec.version)
        if list(new) != list(self._edges) or any(new[n] is not self._edges.get(n) for n in new):
            self._edges = new
            self._bump()

    # -- observations ------------------------------------------------------------------
    def record_probe(
        self,
        name: str,
        ok: bool,
        rtt_ms: float | None,
        now: float,
        error: str | None = None,
        *,
        reachable: bool | None = None,
    ) -> str | None:
        """Record one health probe: ``ok`` (HTTP 200 within the timeout), its round-trip
        time in ms, and whether the edge answered HTTP at all (``reachable``, default
        ``ok``: a 503 is unhealthy but alive, a refused connection is neither).

        Returns ``"up"`` or ``"down"`` when the edge changes state (after ``rise`` good or
        ``fall`` failed probes in a row), else None. Unknown edges (removed while the
        probe ran) are ignored."""
        st = self._edges.get(name)
        if st is None:
            return None
        was_suspect = st.up and st.failures > 0
        was_reachable = st.reachable
        was_recovering = st.recovering_until is not None
        first = not st.probed
        st.reachable = ok if reachable is None else reachable
        st.probed = True
        st.last_probe_at = now
        change = None
        if ok:
            st.last_error = None
            st.successes += 1
            if st.failures and self._health.slow_start:
                st.recovering_until = now + self._health.slow_start
            elif st.recovering_until is not None and now >= st.recovering_until:
                st.recovering_until = None
            st.failures = 0
            if not st.up and st.successes >= self._health.rise:
                st.up = True
                change = "up"
            if rtt_ms is not None and math.isfinite(rtt_ms):
                self._update_rtt(st, rtt_ms)
        else:
            st.last_error = error or "probe failed"
            st.failures += 1
            st.successes = 0
            if st.up and st.failures >= self._health.fall:
                st.up = False
                change = "down"
        if change is not None:
            st.changes[change] = st.changes.get(change, 0) + 1
        if first and self._first_round and all(s.probed for s in self._edges.values()):
            self._first_round = False  # the round is complete (the bump below says so)
        if (
            first
            or change is not None
            or was_suspect != (st.up and st.failures > 0)
            or was_reachable != st.reachable
            or was_recovering != (st.recovering_until is not None)
        ):
            self._bump()
        return change

    def _update_rtt(self, st: _EdgeState, rtt_ms: float) -> None:
        a = self._latency.ewma_alpha
        st.rtt_ewma = rtt_ms if st.rtt_ewma is None else a * rtt_ms + (1 - a) * st.rtt_ewma
        pub = st.rtt_published
        # Republishing clears the answer cache, so only a meaningful move republishes.
        if pub is None or abs(st.rtt_ewma - pub) > self._latency.change_threshold * pub:
            st.rtt_published = st.rtt_ewma
            self._bump()

    def record_load(self, name: str, in_flight: int, cpu_seconds: float | None, now: float) -> None:
        """Record an edge's ``/status``: requests in flight and its process CPU time in
        seconds (CPU use is the delta over wall time, a fraction of one core). Overload
        uses the watermarks with hysteresis (see :class:`router.config.LoadSettings`)."""
        st = self._edges.get(name)
        if st is None:
            return
        st.in_flight = max(0, int(in_flight))
        st.load_at = now
        if cpu_seconds is not None and math.isfinite(cpu_seconds):
            prev = st.cpu_sample
            if prev is not None and now > prev[1] and cpu_seconds >= prev[0]:
                st.cpu = (cpu_seconds - prev[0]) / (now - prev[1])
            elif prev is not None and cpu_seconds < prev[0]:
                st.cpu = 0.0  # the edge restarted: its counter began again
            st.cpu_sample = (cpu_seconds, now)
        lc = self._load
        if st.overloaded:
            overloaded = st.in_flight > lc.low_in_flight or st.cpu > lc.low_cpu
        else:
            overloaded = st.in_flight >= lc.high_in_flight or st.cpu >= lc.high_cpu
        score = max(st.in_flight / lc.high_in_flight, st.cpu / lc.high_cpu)
        if overloaded != st.overloaded or (overloaded and score != st.load_score):
            st.overloaded = overloaded
            st.load_score = score
            self._bump()
        else:
            st.load_score = score

    def record_client_rtt(self, edge: str, prefix: PrefixKey, rtt_ms: float, now: float) -> bool:
        """Record an RTT (ms) an edge measured to a client prefix; False if the edge is
        unknown or the value unusable. Samples are smoothed (EWMA) per (prefix, edge)."""
        if edge not in self._edges or not math.isfinite(rtt_ms) or not 0 <= rtt_ms < 600_000:
            return False
        per = self._client.get(prefix)
        if per is None and len(self._client) >= self._latency.max_prefixes:
            # Full: forget the prefix that has gone longest without a sample.
            oldest = min(self._client, key=lambda k: max(t for _, t in self._client[k].values()))
            del self._client[oldest]
        updated = dict(per or {})
        old = updated.get(edge)
        a = self._latency.ewma_alpha
        updated[edge] = (rtt_ms if old is None else a * rtt_ms + (1 - a) * old[0], now)
        # Copy-on-write: snapshots already handed out keep the mapping they saw.
        self._client[prefix] = MappingProxyType(updated)
        self._bump()
        return True

    def expire(self, now: float) -> int:
        """Drop client RTT samples older than ``latency.sample_max_age``; returns how many."""
        limit = now - self._latency.sample_max_age
        dropped = 0
        for key in list(self._client):
            per = self._client[key]
            keep = {e: s for e, s in per.items() if s[1] >= limit and e in self._edges}
            if len(keep) != len(per):
                dropped += len(per) - len(keep)
                if keep:
                    self._client[key] = MappingProxyType(keep)
                else:
                    del self._client[key]
        if dropped:
            self._bump()
        return dropped

    # -- reading -------------------------------------------------------------------------
    def snapshot(self) -> TableSnapshot:
        """The current immutable view (rebuilt only when the generation moved)."""
        snap = self._snapshot
        if snap is None:
            views = tuple(st.view() for st in self._edges.values())
            snap = TableSnapshot(
                generation=self._generation,
                edges=views,
                by_version=MappingProxyType(
                    {v: tuple(e for e in views if e.version == v) for v in (4, 6)}
                ),
                client_rtt=MappingProxyType(dict(self._client)),
                degraded=any(
                    not e.up or e.suspect or e.overloaded or (self._first_round and not e.probed)
                    for e in views
                ),
            )
            self._snapshot = snap
        return snap

    def client_prefix_count(self) -> int:
        return len(self._client)

    def describe(self, now: float) -> list[dict[str, Any]]:
        """The ``edges`` list of the router's ``/status`` (see ``router.app``)."""
        out = []
        for st in self._edges.values():
            spec = st.spec
            out.append(
                {
                    "name": spec.name,
                    "address": spec.address,
                    "port": spec.port,
                    "admin_url": spec.probe_base,
                    "source": spec.source,
                    "state": "up" if st.up else "down",
                    "healthy": st.up,
                    "probed": st.probed,
                    "suspect": st.up and st.failures > 0,
                    "recovering": st.recovering_until is not None,
                    "reachable": st.reachable,
                    "consecutive_failures": st.failures,
                    "consecutive_successes": st.successes,
                    "last_probe_age_s": None
                    if st.last_probe_at is None
                    else round(now - st.last_probe_at, 3),
                    "last_error": st.last_error,
                    "rtt_ms": None if st.rtt_ewma is None else round(st.rtt_ewma, 3),
                    "load": {
                        "in_flight": st.in_flight,
                        "cpu": round(st.cpu, 4),
                        "overloaded": st.overloaded,
                        "score": round(st.load_score, 4),
                    },
                    "client_prefixes": sum(1 for per in self._client.values() if spec.name in per),
                    "health_changes": dict(st.changes),
                }
            )
        return out
