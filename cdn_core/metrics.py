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

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "CONTENT_TYPE_LATEST",
    "FastCounter",
    "FastCounterFamily",
    "new_registry",
    "render",
    "status_class",
]


def new_registry() -> CollectorRegistry:
    """A registry without the process/platform collectors' global state."""
    return CollectorRegistry(auto_describe=True)


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
