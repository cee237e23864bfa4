"""The control plane's Prometheus metrics, registered on a registry passed in.

- ``cdn_purge_latency_seconds``: histogram of seconds from a purge's creation until every
  node acknowledged it (observed once per purge, when it completes).
- ``cdn_purges_total{state}``: purges by the state their first fan-out ended in
  (``complete`` or ``partial``); a later completion by the retry loop is not recounted.
- ``cdn_api_requests_total{route,status_class}``: API requests by route template (never the
  raw path) and ``2xx``/``4xx``/``5xx``.
- ``cdn_node_up{node,tier}``: 1 while a registered node answers its ``/healthz`` with 200,
  as the stats sampler (:mod:`control_plane.history`) last saw it; a node removed from
  the registry loses its series.
- ``cdn_node_health_changes_total{tier,state}``: health transitions the sampler saw
  (``state`` is ``up`` or ``down``).
- ``cdn_failover_forced``: 1 while failover is forced, by an operator or by the origin
  watch (as the stats sampler last saw it).
- ``cdn_origin_up``: the origin watch's verdict (:mod:`control_plane.origin_watch`): 1 up,
  0 down, -1 before its first verdict.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ControlPlaneMetrics:
    """Holds the metric objects; one instance per app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.purge_latency = Histogram(
            "cdn_purge_latency_seconds",
            "Seconds from purge creation until every node acknowledged it",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.purges = Counter(
            "cdn_purges_total",
            "Purges by the state their first fan-out ended in",
            ["state"],
            registry=registry,
        )
        self.api_requests = Counter(
            "cdn_api_requests_total",
            "Control plane API requests by route template and status class",
            ["route", "status_class"],
            registry=registry,
        )
        self.node_up = Gauge(
            "cdn_node_up",
            "1 while the node answers its health check (sampled by the control plane)",
            ["node", "tier"],
            registry=registry,
        )
        self.health_changes = Counter(
            "cdn_node_health_changes_total",
            "Node health transitions seen by the control plane's sampler",
            ["tier", "state"],
            registry=registry,
        )
        self.failover_forced = Gauge(
            "cdn_failover_forced",
            "1 while failover is forced (by the operator or by the origin watch)",
            registry=registry,
        )
        self.origin_up = Gauge(
            "cdn_origin_up",
            "The origin watch's verdict: 1 up, 0 down (-1 before its first verdict)",
            registry=registry,
        )
        self.origin_up.set(-1)
