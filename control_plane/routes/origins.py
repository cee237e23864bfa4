"""Origin health and the failover override: ``/v1/origins``.

- ``GET /v1/origins`` (any API key) -> ``{"failover": {"forced", "auto", "reason",
  "since"}, "watch": {"state": "up"|"down"|null, "reason", "since"}, "origins": [{"name",
  "host", "port", "admin_url", "healthy", "error"}],
  "upstreams": [{"url", "up", "seen_by": {mid name: {"up", "failures", "fetches"}}}]}``:
  registered origins probed on their admin ``/healthz``, and each origin URL as the mid
  tiers see it (from their ``/status``); ``up`` is true while any mid tier reaches it.
  ``watch`` is the automatic failover's verdict (:mod:`control_plane.origin_watch`);
  ``auto`` is true while failover is forced by it rather than by an operator.
- ``PUT /v1/origins/failover`` (admin) body ``{"forced": bool, "reason": str, "service":
  str | null}`` (with ``service``: for that service only, ``failover.services``) -> 200 the
  failover state. While forced, the mid tiers answer every request they hold a usable
  copy for from their cache (stale included, unless the response forbids it) without
  asking the origin; they learn the state from their next heartbeat answer (about a
  second).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from control_plane.api import (
    CLOCK,
    CONFIG,
    METRICS,
    STORE,
    body_of,
    is_leader,
    read_body,
    session_of,
)
from control_plane.auth import ADMIN_ONLY, READ, add_route
from control_plane.models import FailoverIn, rfc3339
from control_plane.origin_watch import WATCH, WATCH_SETTING
from control_plane.routes.nodes import FAILOVER
from control_plane.routes.status import node_status


async def failover_state(request: web.Request) -> dict[str, Any]:
    state = await request.app[STORE].get_setting(FAILOVER) or {"forced": False}
    return {
        "forced": bool(state.get("forced")),
        "auto": bool(state.get("forced") and state.get("auto")),
        "reason": state.get("reason"),
        "since": rfc3339(state.get("since")),
        "services": {name: {"reason": s.get("reason"), "since": rfc3339(s.get("since")),
                            "auto": bool(s.get("auto"))}
                     for name, s in (state.get("services") or {}).items()},
    }


async def list_origins(request: web.Request) -> web.Response:
    app = request.app
    session = session_of(app)
    timeout = aiohttp.ClientTimeout(total=app[CONFIG].status_timeout)
    store = app[STORE]
    watch = app[WATCH]
    origins = await store.list_nodes("origin")
    mids = await store.list_nodes("mid")
    probed = await asyncio.gather(*(node_status(session, n, timeout) for n in origins))
    mid_views = await asyncio.gather(*(node_status(session, n, timeout) for n in mids))
    upstreams: dict[str, dict[str, Any]] = {}
    for view in mid_views:
        status = view.get("status") or {}
        for up in status.get("upstreams") or []:
            if not isinstance(up, dict) or not isinstance(up.get("url"), str):
                continue
            entry = upstreams.setdefault(up["url"], {"url": up["url"], "up": False, "seen_by": {}})
            entry["seen_by"][view["name"]] = {k: up.get(k) for k in ("up", "failures", "fetches")}
            entry["up"] = entry["up"] or bool(up.get("up"))
    return body_of(
        {
            "failover": await failover_state(request),
            "watch": await _watch_view(app, watch),
            "origins": [
                {k: o[k] for k in ("name", "host", "port", "admin_url", "healthy", "error")}
                for o in probed
            ],
            "upstreams": list(upstreams.values()),
        }
    )


async def _watch_view(app: web.Application, watch: Any) -> dict[str, Any]:
    """This replica's watch when it leads (it runs the watch), else the verdict the
    leader last recorded."""
    if is_leader(app):
        view = watch.to_json()
    else:
        view = await app[STORE].get_setting(WATCH_SETTING) or watch.to_json()
    return {**view, "since": rfc3339(view.get("since"))}


async def set_failover(request: web.Request) -> web.Response:
    body = await read_body(request, FailoverIn)
    store, now = request.app[STORE], request.app[CLOCK].time()
    state = await store.get_setting(FAILOVER) or {"forced": False}
    if body.service is not None:
        # One service: the global state stays as it is.
        services = dict(state.get("services") or {})
        if body.forced:
            services[body.service] = {"reason": body.reason, "since": now}
        else:
            services.pop(body.service, None)
        state = {**state, "services": services}
    else:
        state = {**state, "forced": body.forced, "auto": False, "reason": body.reason,
                 "since": now if body.forced else None}
    await store.set_setting(FAILOVER, state)
    request.app[METRICS].failover_forced.set(1 if state.get("forced") else 0)
    return body_of(await failover_state(request))


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/origins", list_origins, READ)
    add_route(app, "PUT", "/v1/origins/failover", set_failover, ADMIN_ONLY)
