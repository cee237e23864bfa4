"""Prometheus helpers. Every service gets its registry passed in (tests use a fresh one);
labels stay bounded (tier, cache status, status class; never URL or client IP).

Naming, for every service: ``cdn_`` prefix, then the subsystem (``upstream``, ``cache``,
``dns``, ``router``, ``origin``, ``purge``, ``node``...), base units (``_seconds``,
``_bytes``), ``_total`` on counters. Node metrics carry ``tier``. Ratios are not exported:
they are computed in PromQL from counters (see ``configs/grafana/cdn-dashboard.json``).
Where each service's names are listed: :mod:`cdn_core.node.metrics`, ``router.app``,
``origin.stats`` and ``control_plane.metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "new_registry", "render", "status_class"]


def new_registry() -> CollectorRegistry:
    """A registry without the process/platform collectors' global state."""
    return CollectorRegistry(auto_describe=True)


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)


def status_class(status: int) -> str:
    """``"2xx"`` for 204 and so on: a bounded label for response status."""
    return f"{status // 100}xx"
