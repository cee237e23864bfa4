"""The admin HTTP app every service exposes: ``/healthz``, ``/status`` (JSON) and
``/metrics`` (Prometheus text). Services add their own routes (for example the nodes'
purge endpoint) to the app this returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from cdn_core.metrics import CONTENT_TYPE_LATEST, render
from cdn_core.service import supervised_restarts


def create_admin_app(
    *,
    name: str,
    role: str,
    registry: CollectorRegistry,
    status: Callable[[], dict[str, Any]],
    healthy: Callable[[], bool] = lambda: True,
) -> web.Application:
    """Build the admin app.

    ``/healthz`` answers 200 ``{"status": "ok"}`` while ``healthy()`` is true, else 503;
    ``/status`` answers ``{"name", "role", "restarts", **status()}`` (``restarts``: how
    often ``cdnctl up`` restarted this process); ``/metrics`` renders ``registry``.
    """
    app = web.Application()

    async def healthz(_: web.Request) -> web.Response:
        ok = healthy()
        return web.json_response(
            {"status": "ok" if ok else "unhealthy", "name": name, "role": role},
            status=200 if ok else 503,
        )

    restarts = supervised_restarts()

    async def status_view(_: web.Request) -> web.Response:
        return web.json_response({"name": name, "role": role, "restarts": restarts, **status()})

    async def metrics(_: web.Request) -> web.Response:
        resp = web.Response(body=render(registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status_view)
    app.router.add_get("/metrics", metrics)
    return app
