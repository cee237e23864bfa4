"""Prometheus metrics of a caching node, bound to a registry passed in. Labels are
bounded: tier, cache status, status class."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

CACHE_STATUSES = ("hit", "stale", "miss", "revalidated", "pass", "error")


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry, tier: str) -> None:
        self.requests = Counter(
            "cdn_requests_total",
            "Client requests by cache status",
            ["tier", "cache_status"],
            registry=registry,
        )
        self.by_status = {s: self.requests.labels(tier, s) for s in CACHE_STATUSES}
        self.upstream_seconds = Histogram(
            "cdn_upstream_fetch_seconds",
            "Upstream fetch latency, seconds",
            ["tier"],
            registry=registry,
        ).labels(tier)
        self.upstream_errors = Counter(
            "cdn_upstream_errors_total",
            "Upstream fetches that failed",
            ["tier"],
            registry=registry,
        ).labels(tier)
        self.collapsed = Counter(
            "cdn_collapsed_requests_total",
            "Requests that waited on another's fetch",
            ["tier"],
            registry=registry,
        ).labels(tier)
        self.stale_served = Counter(
            "cdn_stale_served_total",
            "Stale responses served (swr, stale-if-error, failover)",
            ["tier"],
            registry=registry,
        ).labels(tier)
        self.purged = Counter(
            "cdn_purged_objects_total",
            "Stored responses removed or marked stale by purges",
            ["tier"],
            registry=registry,
        ).labels(tier)
        self.refused = Counter(
            "cdn_refused_total", "Clients refused or timed out, by reason",
            ["tier", "reason"], registry=registry,
        )
        self.cache_bytes = Gauge(
            "cdn_cache_bytes",
            "Bytes charged to the cache store",
            ["tier"],
            registry=registry,
        ).labels(tier)
        self.cache_entries = Gauge(
            "cdn_cache_entries",
            "Stored responses",
            ["tier"],
            registry=registry,
        ).labels(tier)
