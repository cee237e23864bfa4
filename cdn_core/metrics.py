"""Prometheus helpers. Every service gets its registry passed in (tests use a fresh one);
labels stay bounded (tier, cache status, status class; never URL or client IP).

Naming, for every service: ``cdn_`` prefix, then the subsystem (``upstream``, ``cache``,
``dns``, ``router``, ``origin``, ``purge``, ``node``...), base units (``_seconds``,
``_bytes``), ``_total`` on counters. Node metrics carry ``tier``. Ratios are not exported:
they are computed in PromQL from counters (see ``configs/grafana/cdn-dashboard.json``).
Where each service's names are listed: :mod:`cdn_core.node.observe.metrics`, ``router.app``,
``origin.stats`` and ``control_plane.metrics``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "CONTENT_TYPE_LATEST",
    "FastCounter",
    "FastCounterFamily",
    "MetricSet",
    "new_registry",
    "render",
    "status_class",
]


def new_registry() -> CollectorRegistry:
    """A registry without the process/platform collectors' global state."""
    return CollectorRegistry(auto_describe=True)


class MetricSet:
    """Declares one service's metrics on the registry it is given: each call makes one
    metric with its name, help text and label names, so a service's metrics module is a
    list of declarations (names as the module docstring above says).

    Raises (from prometheus-client, on any of the calls):
        ValueError: the name is already registered on this registry, or is invalid.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A prometheus-client counter (thread-safe: encoder threads may increment it)."""
        return Counter(name, documentation, list(labels), registry=self.registry)

    def fast_counter(
        self, name: str, documentation: str, labels: Sequence[str] = ()
    ) -> FastCounterFamily:
        """A :class:`FastCounterFamily`: for counters incremented on the event loop's hot
        path only."""
        return FastCounterFamily(name, documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, documentation, list(labels), registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        """A histogram; ``buckets`` are upper bounds in the metric's unit (seconds...)."""
        return Histogram(
            name, documentation, list(labels), buckets=buckets, registry=self.registry
        )


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)


def status_class(status: int) -> str:
    """``"2xx"`` for 204 and so on: a bounded label for response status."""
    return f"{status // 100}xx"


class FastCounter:
    """A monotonically increasing number for a hot path, exported by a collector at scrape
    time. Only ever touched from one event loop thread, so ``+=`` needs no lock (a
    prometheus-client child takes a lock on every increment: about 8x the cost)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    # prometheus_client's children expose ``_value.get()``; callers written for them keep
    # working.
    @property
    def _value(self) -> FastCounter:
        return self

    def get(self) -> int:
        return self.value


class FastCounterFamily:
    """A labelled counter made of :class:`FastCounter` children, registered as a collector:
    the drop-in for ``Counter(name, doc, labelnames, registry=...)`` on a hot path.
    ``name`` may end in ``_total`` (exported with it, as a Counter would be)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self.children: dict[tuple[str, ...], FastCounter] = {}
        registry.register(self)

    def labels(self, *values: str) -> FastCounter:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = FastCounter()
        return child

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        for values, child in list(self.children.items()):
            family.add_metric(list(values), child.value)
        yield family
