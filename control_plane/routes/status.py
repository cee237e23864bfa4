"""Cluster status: ``GET /v1/status``.

Asks every registered node's admin port, concurrently, for ``/healthz`` (healthy when it
answers 200) and ``/status`` (its JSON), each within ``status_timeout`` seconds. Answers
``{"nodes": [{"name", "tier", "host", "port", "admin_url", "healthy": bool,
"status": <the node's /status JSON or null>, "error": null | str}], "control_plane":
{"restarts": n}}``, nodes by tier then name (a node's ``status.restarts`` and the control
plane's count how often ``cdnctl up`` restarted it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from cdn_core.service import supervised_restarts
from control_plane.api import CONFIG, STORE, body_of, session_of
from control_plane.auth import READ, add_route
from control_plane.models import Node


async def _get(
    session: aiohttp.ClientSession, url: str, timeout: aiohttp.ClientTimeout
) -> tuple[int, Any, str | None]:
    """``(HTTP status, JSON body or None, None)``, or ``(0, None, error text)`` when the
    node could not be reached in time."""
    try:
        async with session.get(url, timeout=timeout) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                data = None
            return resp.status, data, None
    except TimeoutError:
        return 0, None, f"{url}: no answer within {timeout.total} s"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return 0, None, f"{url}: {type(exc).__name__}: {exc}"


async def node_status(
    session: aiohttp.ClientSession, node: Node, timeout: aiohttp.ClientTimeout
) -> dict[str, Any]:
    """One entry of ``/v1/status`` for ``node``."""
    base = node.admin_url.rstrip("/")
    (h_status, _, h_error), (s_status, s_body, s_error) = await asyncio.gather(
        _get(session, base + "/healthz", timeout),
        _get(session, base + "/status", timeout),
    )
    errors: list[str] = []
    if h_error is not None:
        errors.append(h_error)
    elif h_status != 200:
        errors.append(f"{base}/healthz: HTTP {h_status}")
    body = s_body if s_status == 200 and isinstance(s_body, dict) else None
    if s_error is not None:
        errors.append(s_error)
    elif body is None:
        errors.append(f"{base}/status: HTTP {s_status} without a JSON object")
    entry = node.to_json()
    del entry["registered_at"]
    entry.update(healthy=h_status == 200, status=body, error="; ".join(errors) or None)
    return entry


async def cluster_status(request: web.Request) -> web.Response:
    app = request.app
    session = session_of(app)
    timeout = aiohttp.ClientTimeout(total=app[CONFIG].status_timeout)
    nodes, stale = await app[STORE].nodes_or_last()
    entries = await asyncio.gather(*(node_status(session, n, timeout) for n in nodes))
    out = {"nodes": list(entries), "control_plane": {"restarts": supervised_restarts()}}
    if stale:
        out["stale"] = stale  # the registry as last read: the database is unreachable
    return body_of(out)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/status", cluster_status, READ)
