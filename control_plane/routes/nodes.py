"""Node registry: ``/v1/nodes``.

- ``PUT /v1/nodes/{name}`` body ``{"tier", "host", "port", "admin_url"}`` -> 200 node
  (insert or replace).
- ``GET /v1/nodes[?tier=edge]`` -> ``{"nodes": [node, ...]}`` by tier then name.
- ``GET /v1/nodes/{name}`` -> node, 404 if unknown.
- ``DELETE /v1/nodes/{name}`` -> 204; its unacknowledged purges no longer wait for it.

A node is ``{"name", "tier", "host", "port", "admin_url", "registered_at"}``.
"""

from __future__ import annotations

from typing import get_args

from aiohttp import web

from control_plane.api import CLOCK, STORE, ApiError, body_of, read_body
from control_plane.models import NODE_NAME, NodeIn, Tier, is_hostname, is_http_url

TIERS: tuple[str, ...] = get_args(Tier)


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not NODE_NAME.match(name):
        raise ApiError(400, f"bad node name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


async def put_node(request: web.Request) -> web.Response:
    name = _name(request)
    body = await read_body(request, NodeIn)
    if not is_hostname(body.host):
        raise ApiError(400, f"host: not a host name or IPv4 address: {body.host!r}")
    if not is_http_url(body.admin_url):
        raise ApiError(400, f"admin_url: must be an absolute http(s) URL: {body.admin_url!r}")
    node = await request.app[STORE].upsert_node(
        name,
        tier=body.tier,
        host=body.host,
        port=body.port,
        admin_url=body.admin_url.rstrip("/"),
        now=request.app[CLOCK].time(),
    )
    return body_of(node.to_json())


async def list_nodes(request: web.Request) -> web.Response:
    tier = request.query.get("tier")
    if tier is not None and tier not in TIERS:
        raise ApiError(400, f"tier must be one of {', '.join(TIERS)}; got {tier!r}")
    nodes = await request.app[STORE].list_nodes(tier)
    return body_of({"nodes": [n.to_json() for n in nodes]})


async def get_node(request: web.Request) -> web.Response:
    name = _name(request)
    node = await request.app[STORE].get_node(name)
    if node is None:
        raise ApiError(404, f"no node named {name!r}")
    return body_of(node.to_json())


async def delete_node(request: web.Request) -> web.Response:
    name = _name(request)
    if not await request.app[STORE].delete_node(name):
        raise ApiError(404, f"no node named {name!r}")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/nodes", list_nodes)
    app.router.add_put("/v1/nodes/{name}", put_node)
    app.router.add_get("/v1/nodes/{name}", get_node)
    app.router.add_delete("/v1/nodes/{name}", delete_node)
