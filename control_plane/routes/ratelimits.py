"""Rate-limit policies applied by the edges: ``/v1/ratelimits``.

A policy body is the fields of :class:`cdn_core.node.policy.ratelimit_policy.RateLimitPolicy`:
``{"name", "key": "client"|"api_key"|"host"|"path_prefix", "host": str|null,
"path_prefix": "/", "api_key_header": "x-api-key", "limit": int, "window": seconds,
"mode": "enforce"|"shadow", "counters": "edge"|"cluster"}``.

- ``GET /v1/ratelimits`` -> ``{"version": int, "policies": [policy + id, created_at,
  updated_at, ...]}`` by name. ``version`` grows with every change; edges learn it from
  their heartbeat answer and fetch the list when it moved (so a change applies within
  about one heartbeat interval, a second by default).
- ``POST /v1/ratelimits`` -> 201 the policy (409 when the name is taken).
- ``GET|PUT|DELETE /v1/ratelimits/{id}`` -> the policy | 200 replaced | 204; 404 if
  unknown.

Reading needs any API key or the node token; writing the admin role.
"""

from __future__ import annotations

from aiohttp import web

from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy
from control_plane.api import CLOCK, STORE, ApiError, body_of, read_body
from control_plane.auth import ADMIN_ONLY, NODE, READ, add_route
from control_plane.store_admin import RATELIMIT_VERSION, NameTaken


async def list_policies(request: web.Request) -> web.Response:
    store = request.app[STORE]
    version = await store.get_setting(RATELIMIT_VERSION) or 0
    policies = await store.list_policies()
    return body_of({"version": version, "policies": [p.to_json() for p in policies]})


async def _save(request: web.Request, policy_id: str | None) -> web.Response:
    body = await read_body(request, RateLimitPolicy)
    try:
        stored = await request.app[STORE].put_policy(
            body.model_dump(), request.app[CLOCK].time(), policy_id
        )
    except NameTaken:
        raise ApiError(409, f"name: a policy named {body.name!r} exists already") from None
    except KeyError:
        raise ApiError(404, f"no rate-limit policy with id {policy_id!r}") from None
    return body_of(stored.to_json(), status=201 if policy_id is None else 200)


async def create_policy(request: web.Request) -> web.Response:
    return await _save(request, None)


async def replace_policy(request: web.Request) -> web.Response:
    return await _save(request, request.match_info["id"])


async def get_policy(request: web.Request) -> web.Response:
    policy_id = request.match_info["id"]
    stored = await request.app[STORE].get_policy(policy_id)
    if stored is None:
        raise ApiError(404, f"no rate-limit policy with id {policy_id!r}")
    return body_of(stored.to_json())


async def delete_policy(request: web.Request) -> web.Response:
    policy_id = request.match_info["id"]
    if not await request.app[STORE].delete_policy(policy_id):
        raise ApiError(404, f"no rate-limit policy with id {policy_id!r}")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/ratelimits", list_policies, READ | {NODE})
    add_route(app, "POST", "/v1/ratelimits", create_policy, ADMIN_ONLY)
    add_route(app, "GET", "/v1/ratelimits/{id}", get_policy, READ)
    add_route(app, "PUT", "/v1/ratelimits/{id}", replace_policy, ADMIN_ONLY)
    add_route(app, "DELETE", "/v1/ratelimits/{id}", delete_policy, ADMIN_ONLY)
