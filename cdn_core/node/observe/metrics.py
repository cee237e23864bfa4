"""Prometheus metrics of a caching node, bound to a registry passed in.

Labels are bounded: ``tier``, ``cache_status`` (:data:`CACHE_STATUSES`), ``protocol``
(:data:`~cdn_core.node.exchange.request.PROTOCOLS`), ``reason`` (a
fixed set of refusal reasons) and ``upstream`` (the configured upstream URLs). Never a
URL, a host name from a request or a client address.

Exported names (every one carries ``tier``):

- ``cdn_requests_total{cache_status,protocol}``: client requests answered by the cache
  handler, by the protocol they came over (``http/1.1``, ``h2``, ``h3``). Hit ratio is
  derived in PromQL: ``hit`` + ``stale`` over all.
- ``cdn_response_body_bytes_total{cache_status}``: body bytes of the representations
  served (a ``HEAD``, ``304`` or range answer counts the representation's length).
- ``cdn_upstream_fetch_seconds`` (histogram), ``cdn_upstream_errors_total``,
  ``cdn_upstream_body_bytes_total``, ``cdn_upstream_up{upstream}`` (1 while the node
  would try it; state changes are ``changes(cdn_upstream_up[1h])`` in PromQL).
- ``cdn_collapsed_requests_total``, ``cdn_stale_served_total``,
  ``cdn_purged_objects_total``, ``cdn_refused_total{reason}``.
- Store (read from ``store.stats()`` when scraped): ``cdn_cache_bytes`` (memory bytes
  charged), ``cdn_cache_entries`` (stored responses, memory and disk),
  ``cdn_cache_lookups_total{result}`` (``hit``/``miss`` in memory),
  ``cdn_cache_admissions_rejected_total{reason}`` (``too_large``: over the per-object
  limit; ``filter``: lost the policy's admission test),
  ``cdn_cache_evictions_total{reason}`` (``capacity``, ``variants``); with a disk tier
  ``cdn_cache_disk_bytes``, ``cdn_cache_disk_entries``, ``cdn_cache_disk_hits_total``,
  ``cdn_cache_disk_evictions_total``, ``cdn_cache_disk_errors_total{kind}`` (``corrupt``
  files dropped, ``write`` errors, writes ``dropped`` while the queue was full).
- ``cdn_gc_pause_seconds{generation}`` (histogram): the event loop's pauses for the
  cyclic garbage collector, in node processes (:mod:`cdn_core.gc_schedule`).
- Rate limiting (edges): ``cdn_ratelimit_decisions_total{mode,outcome}`` (see
  :mod:`cdn_core.node.policy.ratelimit`).

The hot path's counters (requests and bytes by cache status) are plain integers
(:class:`FastCounter`, tens of nanoseconds instead of a lock per increment) exported by a
collector when ``/metrics`` is scraped: the node serves and scrapes on one event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cdn_core.gc_schedule import GcCollector
from cdn_core.metrics import FastCounter, MetricSet
from cdn_core.node.exchange.request import PROTOCOL_OF_VERSION, PROTOCOLS

CACHE_STATUSES = ("hit", "stale", "miss", "revalidated", "pass", "error")

# Upstream fetch latency buckets, seconds: loopback mid tiers answer in a millisecond, a
# distant origin in hundreds.
UPSTREAM_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class _Sources:
    """What the scrape-time collector reads: set by :meth:`NodeMetrics.watch`."""

    def __init__(self) -> None:
        self.store_stats: Callable[[], dict[str, Any]] | None = None
        self.upstreams: Callable[[], list[dict[str, Any]]] | None = None


class _SettableGauge:
    """``cache_bytes``/``cache_entries``: what ``/status`` last set, used when no store is
    watched (the collector reads the store directly otherwise)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)


class _StoreFamilies:
    """The store's admission, lookup and disk-tier counters (labels from fixed sets)."""

    def __init__(self) -> None:
        self.lookups = CounterMetricFamily(
            "cdn_cache_lookups_total",
            "Store lookups by result (memory)",
            labels=["tier", "result"],
        )
        self.rejected = CounterMetricFamily(
            "cdn_cache_admissions_rejected_total",
            "Responses the store did not keep: too_large, or filter (lost admission)",
            labels=["tier", "reason"],
        )
        self.disk_bytes = GaugeMetricFamily(
            "cdn_cache_disk_bytes", "Bytes of the on-disk tier's files", labels=["tier"]
        )
        self.disk_entries = GaugeMetricFamily(
            "cdn_cache_disk_entries", "Stored responses on disk", labels=["tier"]
        )
        self.disk_hits = CounterMetricFamily(
            "cdn_cache_disk_hits_total", "Memory misses answered from disk", labels=["tier"]
        )
        self.disk_evictions = CounterMetricFamily(
            "cdn_cache_disk_evictions_total", "Files evicted for space", labels=["tier"]
        )
        self.disk_errors = CounterMetricFamily(
            "cdn_cache_disk_errors_total",
            "Disk tier problems: corrupt files dropped, write errors, dropped writes",
            labels=["tier", "kind"],
        )

    def add(self, tier: str, stats: dict[str, Any]) -> None:
        if "lookup_hits" in stats:
            self.lookups.add_metric([tier, "hit"], float(stats["lookup_hits"]))
            self.lookups.add_metric([tier, "miss"], float(stats["lookup_misses"]))
        for reason, count in stats.get("rejected_by_reason", {}).items():
            self.rejected.add_metric([tier, reason], float(count))
        disk = stats.get("disk")
        if disk:
            self.disk_bytes.add_metric([tier], float(disk["bytes"]))
            self.disk_entries.add_metric([tier], float(disk["entries"]))
            self.disk_hits.add_metric([tier], float(disk["hits"]))
            self.disk_evictions.add_metric([tier], float(disk["evictions"]))
            self.disk_errors.add_metric([tier, "corrupt"], float(disk["corrupt"]))
            self.disk_errors.add_metric([tier, "write"], float(disk["write_errors"]))
            self.disk_errors.add_metric([tier, "dropped"], float(disk["writes_dropped"]))

    def families(self) -> Iterator[Any]:
        yield from (
            self.lookups,
            self.rejected,
            self.disk_bytes,
            self.disk_entries,
            self.disk_hits,
            self.disk_evictions,
            self.disk_errors,
        )


class _NodeCollector(Collector):
    def __init__(self, metrics: NodeMetrics) -> None:
        self._m = metrics

    def describe(self) -> list[Any]:
        # Registered names (the registry checks for duplicates; tests list them).
        return list(self._families(collect_values=False))

    def collect(self) -> Iterator[Any]:
        yield from self._families(collect_values=True)

    def _families(self, *, collect_values: bool) -> Iterator[Any]:
        m = self._m
        tier = m.tier
        requests = CounterMetricFamily(
            "cdn_requests_total",
            "Client requests by cache status and protocol",
            labels=["tier", "cache_status", "protocol"],
        )
        body = CounterMetricFamily(
            "cdn_response_body_bytes_total",
            "Body bytes of the representations served, by cache status",
            labels=["tier", "cache_status"],
        )
        up_bytes = CounterMetricFamily(
            "cdn_upstream_body_bytes_total",
            "Body bytes received from upstream",
            labels=["tier"],
        )
        cache_bytes = GaugeMetricFamily(
            "cdn_cache_bytes", "Bytes charged to the cache store", labels=["tier"]
        )
        entries = GaugeMetricFamily("cdn_cache_entries", "Stored responses", labels=["tier"])
        evictions = CounterMetricFamily(
            "cdn_cache_evictions_total",
            "Stored responses evicted from memory, by reason",
            labels=["tier", "reason"],
        )
        store_families = _StoreFamilies()
        up = GaugeMetricFamily(
            "cdn_upstream_up",
            "1 while this node would send requests to the upstream, 0 while it skips it",
            labels=["tier", "upstream"],
        )
        if collect_values:
            for protocol, counters in m.requests.items():
                for status, counter in counters.items():
                    requests.add_metric([tier, status, protocol], counter.value)
            for status in CACHE_STATUSES:
                body.add_metric([tier, status], m.body_bytes[status].value)
            up_bytes.add_metric([tier], m.upstream_bytes.value)
            src = m.sources
            stats = src.store_stats() if src.store_stats is not None else None
            if stats is not None:
                cache_bytes.add_metric([tier], float(stats.get("bytes", 0)))
                entries.add_metric([tier], float(stats.get("entries", 0)))
                by_reason = stats.get("evictions_by_reason")
                if by_reason is None:  # a store without reasons
                    by_reason = {"capacity": stats.get("evictions", 0)}
                for reason, count in by_reason.items():
                    evictions.add_metric([tier, reason], float(count))
                store_families.add(tier, stats)
            else:
                cache_bytes.add_metric([tier], m.cache_bytes.value)
                entries.add_metric([tier], m.cache_entries.value)
                evictions.add_metric([tier, "capacity"], 0.0)
            if src.upstreams is not None:
                for u in src.upstreams():
                    up.add_metric([tier, str(u.get("url"))], 1.0 if u.get("up") else 0.0)
        yield from (requests, body, up_bytes, cache_bytes, entries, evictions, up)
        yield from store_families.families()


class NodeMetrics:
    """The metric objects of one node (see the module docstring for the names)."""

    def __init__(self, registry: CollectorRegistry, tier: str) -> None:
        self.tier = tier
        self.sources = _Sources()
        self.requests = {p: {s: FastCounter() for s in CACHE_STATUSES} for p in PROTOCOLS}
        self.body_bytes = {s: FastCounter() for s in CACHE_STATUSES}
        self.upstream_bytes = FastCounter()
        self.cache_bytes = _SettableGauge()
        self.cache_entries = _SettableGauge()
        registry.register(_NodeCollector(self))
        registry.register(GcCollector(tier))
        m = MetricSet(registry)
        self.upstream_seconds = m.histogram(
            "cdn_upstream_fetch_seconds",
            "Upstream fetch latency (request sent until the body is complete), seconds",
            ["tier"],
            buckets=UPSTREAM_BUCKETS,
        ).labels(tier)
        self.upstream_errors = m.counter(
            "cdn_upstream_errors_total", "Upstream fetches that failed", ["tier"]
        ).labels(tier)
        self.collapsed = m.counter(
            "cdn_collapsed_requests_total", "Requests that waited on another's fetch", ["tier"]
        ).labels(tier)
        self.stale_served = m.counter(
            "cdn_stale_served_total",
            "Stale responses served (swr, stale-if-error, failover)",
            ["tier"],
        ).labels(tier)
        self.purged = m.counter(
            "cdn_purged_objects_total",
            "Stored responses removed or marked stale by purges",
            ["tier"],
        ).labels(tier)
        self.refused = m.counter(
            "cdn_refused_total", "Clients refused or timed out, by reason", ["tier", "reason"]
        )

    def watch(
        self,
        store_stats: Callable[[], dict[str, Any]],
        upstreams: Callable[[], list[dict[str, Any]]],
    ) -> None:
        """Read the store's counters and the upstreams' state when scraped."""
        self.sources.store_stats = store_stats
        self.sources.upstreams = upstreams

    def counted(self, version: str) -> dict[str, FastCounter]:
        """The request counters by cache status for requests of HTTP ``version`` (``1.1``,
        ``2``, ... as :attr:`Request.version` holds it)."""
        return self.requests[PROTOCOL_OF_VERSION.get(version, "http/1.1")]

    def request_counts(self) -> dict[str, int]:
        """Requests by cache status so far, every protocol together (for ``/status``)."""
        return {
            s: sum(counters[s].value for counters in self.requests.values())
            for s in CACHE_STATUSES
        }
