"""Purges: ``/v1/purges``.

- ``POST /v1/purges`` body ``{"type": "url"|"prefix"|"host"|"tag"|"all", "value": str
  (not for "all"), "soft": bool = false, "wait": bool = true}``. With ``wait`` the answer
  (201) comes after the fan-out, with every node's result; without it, 202 at once.
- ``GET /v1/purges/{id}`` -> the purge, 404 if unknown.
- ``GET /v1/purges?limit=20`` -> ``{"purges": [...]}``, newest first (limit 1-500).
- ``GET /v1/purges?after_seq=N[&limit=500]`` -> ``{"purges": [...], "head_seq": int,
  "more": bool}``: the purges with a seq above N, lowest first; how a node that was down,
  partitioned or removed from the registry catches up (see :mod:`cdn_core.node.control.sync`).

Creating needs the purger or admin role; reading any API key (the list also the node
token).

A purge is ``{"id", "seq", "type", "value", "soft", "created_at", "completed_at",
"state": "pending"|"complete"|"partial", "nodes": {name: {"tier", "state", "purged",
"acked_at", "error", "attempts"}}}`` with nodes in fan-out order (see
:mod:`control_plane.purge`).
"""

from __future__ import annotations

import uuid

from aiohttp import web

from control_plane import scope
from control_plane.api import (
    CLOCK,
    STORE,
    ApiError,
    body_of,
    fanout_of,
    query_int,
    read_body,
)
from control_plane.auth import NODE, PURGE, READ, add_route
from control_plane.models import PurgeIn, check_target


async def create_purge(request: web.Request) -> web.Response:
    body = await read_body(request, PurgeIn)
    try:
        value = check_target(body.type, body.value)
    except ValueError as exc:
        raise ApiError(400, f"value: {exc}") from None
    await scope.check_purge(request, body.type, value)
    store, fanout = request.app[STORE], fanout_of(request.app)
    purge = await store.create_purge(body.type, value, body.soft, request.app[CLOCK].time())
    if not body.wait:
        fanout.spawn(fanout.run(purge))
        return body_of(purge.to_json(), status=202)
    done = await fanout.run(purge)
    return body_of(done.to_json(), status=201)


async def get_purge(request: web.Request) -> web.Response:
    purge_id = request.match_info["id"]
    try:
        uuid.UUID(purge_id)
    except ValueError:
        raise ApiError(404, f"no purge with id {purge_id!r}") from None
    purge = await request.app[STORE].get_purge(purge_id)
    if purge is None or not await scope.visible_purges(request, [purge]):
        raise ApiError(404, f"no purge with id {purge_id!r}")
    return body_of(purge.to_json())


async def list_purges(request: web.Request) -> web.Response:
    if "after_seq" in request.query:
        after = query_int(request, "after_seq", default=0, lo=0, hi=2**62)
        limit = query_int(request, "limit", default=500, lo=1, hi=500)
        store = request.app[STORE]
        head = await store.head_seq()
        found = await store.purges_after(after, limit)
        more = bool(found) and found[-1].seq < head
        found = await scope.visible_purges(request, found)
        return body_of({"purges": [p.to_json() for p in found], "head_seq": head, "more": more})
    limit = query_int(request, "limit", default=20, lo=1, hi=500)
    purges = await scope.visible_purges(request, await request.app[STORE].list_purges(limit))
    return body_of({"purges": [p.to_json() for p in purges]})


def add_routes(app: web.Application) -> None:
    add_route(app, "POST", "/v1/purges", create_purge, PURGE)
    add_route(app, "GET", "/v1/purges", list_purges, READ | {NODE})
    add_route(app, "GET", "/v1/purges/{id}", get_purge, READ)
