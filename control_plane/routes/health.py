"""The control plane's own health and metrics: ``GET /v1/healthz`` -> ``{"status": "ok"}``
and ``GET /metrics`` (Prometheus text exposition format)."""

from __future__ import annotations

from aiohttp import web

from cdn_core.metrics import CONTENT_TYPE_LATEST, render
from control_plane.api import METRICS, body_of
from control_plane.auth import PUBLIC, add_route


async def healthz(_: web.Request) -> web.Response:
    return body_of({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    resp = web.Response(body=render(request.app[METRICS].registry))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/healthz", healthz, PUBLIC)
    add_route(app, "GET", "/metrics", metrics, PUBLIC)
