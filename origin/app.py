"""App factories for the origin: the content app and its admin app.

``create_app`` answers every path and method with :class:`origin.handler.OriginHandler`;
``create_origin_admin_app`` serves ``/healthz``, ``/status`` and ``/metrics`` over the
counters the content app keeps. Both hold all their state on the app objects: nothing
lives at module level, so tests can build as many as they like.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from cdn_core.admin import create_admin_app
from cdn_core.clock import Clock, SystemClock
from cdn_core.metrics import new_registry
from origin.config import OriginConfig
from origin.handler import OriginHandler
from origin.rules import RuleSet
from origin.stats import OriginStats

CONFIG_KEY = web.AppKey("origin_config", OriginConfig)
STATS_KEY = web.AppKey("origin_stats", OriginStats)
REGISTRY_KEY = web.AppKey("origin_registry", CollectorRegistry)
HANDLER_KEY = web.AppKey("origin_handler", OriginHandler)


def create_app(
    config: OriginConfig,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """The content app: GET/HEAD of files under ``config.root``, 405 for other methods.

    ``registry`` receives ``cdn_origin_requests_total{method,status_class}`` and
    ``cdn_origin_response_bytes_total`` (a fresh registry when ``None``; never the global
    one). ``clock`` supplies ``Date`` and durations (the system clock when ``None``).
    """
    registry = registry if registry is not None else new_registry()
    stats = OriginStats(registry, max_paths=config.status_max_paths)
    handler = OriginHandler(
        config, clock=clock or SystemClock(), stats=stats, rules=RuleSet(config.cache_rules)
    )
    app = web.Application()
    app[CONFIG_KEY] = config
    app[STATS_KEY] = stats
    app[REGISTRY_KEY] = registry
    app[HANDLER_KEY] = handler
    app.router.add_route("*", "/{path:.*}", handler.handle)
    return app


def origin_status(app: web.Application) -> dict[str, Any]:
    """The ``/status`` body beyond ``name``/``role``: ``{"requests": int, "by_path":
    {request path: int}, "by_method": {method: int}, "root": absolute root}``."""
    return {**app[STATS_KEY].snapshot(), "root": app[HANDLER_KEY].root}


def create_origin_admin_app(app: web.Application) -> web.Application:
    """The admin app for a content app built by :func:`create_app`; its ``/status`` is
    ``{"name", "role": "origin", "requests", "by_path", "by_method", "root"}``."""
    config = app[CONFIG_KEY]
    return create_admin_app(
        name=config.name,
        role="origin",
        registry=app[REGISTRY_KEY],
        status=lambda: origin_status(app),
    )
