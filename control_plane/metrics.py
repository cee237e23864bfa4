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

from prometheus_client import CollectorRegistry

from cdn_core.metrics import MetricSet

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ControlPlaneMetrics:
    """Holds the metric objects; one instance per app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        m = MetricSet(registry)
        self.purge_latency = m.histogram(
            "cdn_purge_latency_seconds",
            "Seconds from purge creation until every node acknowledged it",
            buckets=_LATENCY_BUCKETS,
        )
        self.purges = m.counter(
            "cdn_purges_total", "Purges by the state their first fan-out ended in", ["state"]
        )
        self.api_requests = m.counter(
            "cdn_api_requests_total",
            "Control plane API requests by route template and status class",
            ["route", "status_class"],
        )
        self.node_up = m.gauge(
            "cdn_node_up",
            "1 while the node answers its health check (sampled by the control plane)",
            ["node", "tier"],
        )
        self.health_changes = m.counter(
            "cdn_node_health_changes_total",
            "Node health transitions seen by the control plane's sampler",
            ["tier", "state"],
        )
        self.failover_forced = m.gauge(
            "cdn_failover_forced",
            "1 while failover is forced (by the operator or by the origin watch)",
        )
        self.origin_up = m.gauge(
            "cdn_origin_up",
            "The origin watch's verdict: 1 up, 0 down (-1 before its first verdict)",
        )
        self.origin_up.set(-1)
