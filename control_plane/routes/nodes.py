"""Node registry: ``/v1/nodes``.

- ``PUT /v1/nodes/{name}`` body ``{"tier", "host", "port", "admin_url"}`` -> 200 node
  (insert or replace).
- ``GET /v1/nodes[?tier=edge]`` -> ``{"nodes": [node, ...]}`` by tier then name.
- ``GET /v1/nodes/{name}`` -> node, 404 if unknown.
- ``DELETE /v1/nodes/{name}`` -> 204; its unacknowledged purges no longer wait for it.
- ``POST /v1/nodes/{name}/heartbeat`` (node token) body ``{"tier", "host", "port",
  "admin_url", "purge_seq": int | null, "services": {name: version} | null}`` -> 200
  ``{"purge_seq": head, "ratelimit_version": int, "signing_version": int,
  "services_generation": int, "failover": {"forced": bool, ...}}``: registers the node if
  needed and records when it was last seen, the last purge it applied and the service
  versions it runs; the answer tells it whether to fetch purges (``GET
  /v1/purges?after_seq=``), rate-limit policies, signing keys or services
  (``GET /v1/services/active``).

Reading needs any API key (or the node token, for the list); writing needs admin.
A node is ``{"name", "tier", "host", "port", "admin_url", "registered_at", "last_seen",
"purge_seq", "alive"}``; ``alive`` is null for a node that never sent a heartbeat, else
whether its last one is under ``heartbeat_timeout`` seconds old.
"""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web

from control_plane.api import CLOCK, CONFIG, STORE, ApiError, body_of, read_body
from control_plane.auth import ADMIN_ONLY, NODE, NODE_ONLY, READ, add_route
from control_plane.models import (
    NODE_NAME,
    HeartbeatIn,
    Node,
    NodeIn,
    Tier,
    is_hostname,
    is_http_url,
)
from control_plane.routes.signing import SIGNING_VERSION
from control_plane.store_admin import RATELIMIT_VERSION
from control_plane.store_services import SERVICES_GENERATION

FAILOVER = "failover"

TIERS: tuple[str, ...] = get_args(Tier)


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not NODE_NAME.match(name):
        raise ApiError(400, f"bad node name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def node_json(request: web.Request, node: Node) -> dict[str, Any]:
    out = node.to_json()
    alive = None
    if node.last_seen is not None:
        age = request.app[CLOCK].time() - node.last_seen
        alive = age <= request.app[CONFIG].heartbeat_timeout
    out["alive"] = alive
    return out


def _check_address(body: NodeIn | HeartbeatIn) -> None:
    if not is_hostname(body.host):
        raise ApiError(400, f"host: not a host name or IPv4 address: {body.host!r}")
    if not is_http_url(body.admin_url):
        raise ApiError(400, f"admin_url: must be an absolute http(s) URL: {body.admin_url!r}")


async def put_node(request: web.Request) -> web.Response:
    name = _name(request)
    body = await read_body(request, NodeIn)
    _check_address(body)
    node = await request.app[STORE].upsert_node(
        name,
        tier=body.tier,
        host=body.host,
        port=body.port,
        admin_url=body.admin_url.rstrip("/"),
        now=request.app[CLOCK].time(),
    )
    return body_of(node_json(request, node))


async def list_nodes(request: web.Request) -> web.Response:
    tier = request.query.get("tier")
    if tier is not None and tier not in TIERS:
        raise ApiError(400, f"tier must be one of {', '.join(TIERS)}; got {tier!r}")
    nodes, stale = await request.app[STORE].nodes_or_last(tier)
    out: dict[str, object] = {"nodes": [node_json(request, n) for n in nodes]}
    if stale:
        out["stale"] = stale  # as last read: the database is unreachable
    return body_of(out)


async def get_node(request: web.Request) -> web.Response:
    name = _name(request)
    node = await request.app[STORE].get_node(name)
    if node is None:
        raise ApiError(404, f"no node named {name!r}")
    return body_of(node_json(request, node))


async def delete_node(request: web.Request) -> web.Response:
    name = _name(request)
    if not await request.app[STORE].delete_node(name):
        raise ApiError(404, f"no node named {name!r}")
    return web.Response(status=204)


async def heartbeat(request: web.Request) -> web.Response:
    name = _name(request)
    body = await read_body(request, HeartbeatIn)
    _check_address(body)
    store = request.app[STORE]
    await store.heartbeat(
        name,
        tier=body.tier,
        host=body.host,
        port=body.port,
        admin_url=body.admin_url.rstrip("/"),
        purge_seq=body.purge_seq,
        now=request.app[CLOCK].time(),
    )
    if body.services is not None:
        await store.report_services(name, body.services)
    failover = await store.get_setting(FAILOVER) or {"forced": False}
    return body_of(
        {
            "purge_seq": await store.head_seq(),
            "ratelimit_version": await store.get_setting(RATELIMIT_VERSION) or 0,
            "signing_version": await store.get_setting(SIGNING_VERSION) or 0,
            "services_generation": await store.get_setting(SERVICES_GENERATION) or 0,
            "failover": failover,
        }
    )


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/nodes", list_nodes, READ | {NODE})
    add_route(app, "PUT", "/v1/nodes/{name}", put_node, ADMIN_ONLY)
    add_route(app, "GET", "/v1/nodes/{name}", get_node, READ)
    add_route(app, "DELETE", "/v1/nodes/{name}", delete_node, ADMIN_ONLY)
    add_route(app, "POST", "/v1/nodes/{name}/heartbeat", heartbeat, NODE_ONLY)
