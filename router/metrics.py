"""The router's Prometheus metrics: query and answer counters and the edge-up gauge."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cdn_core.clock import Clock
from cdn_core.metrics import FastCounter, MetricSet
from router.dnswire import Outcome
from router.table import EdgeTable


class RouterMetrics:
    """The router's counters on ``registry`` (names in :mod:`router.app`), with the
    per-label children the hot path reuses."""

    def __init__(self, registry: CollectorRegistry) -> None:
        m = MetricSet(registry)
        self.queries = m.fast_counter(
            "cdn_dns_queries_total",
            "DNS queries answered or dropped, by transport and response code",
            ["transport", "rcode"],
        )
        self.answers = m.fast_counter(
            "cdn_dns_answers_total",
            "Edge addresses handed out, by edge and why it was chosen",
            ["edge", "reason"],
        )
        self.health_changes = m.counter(
            "cdn_router_health_changes_total",
            "Edge health transitions seen by the router's probes",
            ["edge", "state"],
        )
        self.cache = m.fast_counter(
            "cdn_router_answer_cache_total",
            "Service-name answers served from / computed into the answer cache",
            ["result"],
        )
        # labels() costs a lock and a dict lookup; the hot path reuses the children.
        self._q: dict[tuple[str, str], Any] = {}
        self._a: dict[tuple[str, str], Any] = {}
        self.cache_hit = self.cache.labels("hit")
        self.cache_miss = self.cache.labels("miss")

        # Addresses handed out per edge, for /status.
        self.edge_totals: dict[str, FastCounter] = {}

    def query(self, transport: str, rcode: str) -> FastCounter:
        child = self._q.get((transport, rcode))
        if child is None:
            child = self._q[(transport, rcode)] = self.queries.labels(transport, rcode)
        return child

    def answer(self, edge: str, reason: str) -> FastCounter:
        child = self._a.get((edge, reason))
        if child is None:
            child = self._a[(edge, reason)] = self.answers.labels(edge, reason)
        return child

    def edge_total(self, edge: str) -> FastCounter:
        child = self.edge_totals.get(edge)
        if child is None:
            child = self.edge_totals[edge] = FastCounter()
        return child

    def for_outcome(self, transport: str, out: Outcome) -> list[FastCounter]:
        """The counters one query with outcome ``out`` increments."""
        counters = [self.query(transport, out.rcode)]
        if out.edges:
            for edge, reason in zip(out.edges, out.reasons, strict=True):
                counters.append(self.answer(edge, reason))
                counters.append(self.edge_total(edge))
            counters.append(self.cache_hit if out.cache_hit else self.cache_miss)
        return counters


class EdgeUpCollector(Collector):
    """``cdn_router_edge_up{edge}`` from the edge table, read when scraped."""

    def __init__(self, table: EdgeTable, clock: Clock) -> None:
        self._table = table
        self._clock = clock

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "cdn_router_edge_up",
            "1 while the router's probes find the edge healthy",
            labels=["edge"],
        )

    def collect(self) -> list[GaugeMetricFamily]:
        family = self._family()
        now = self._clock.monotonic()
        for edge in self._table.describe(now):
            family.add_metric([str(edge["name"])], 1.0 if edge["healthy"] else 0.0)
        return [family]
