"""The middleware in front of every API route: authentication, authorisation by role,
and the API's own rate limit (``api.rate`` requests a second, ``api.burst`` at once, per
API key, or per client address for requests without a valid key; the node token is not
limited, since the nodes' heartbeats are the control plane's own traffic).

Public routes (health, metrics, the OpenAPI document) and unknown paths skip it.
"""

from __future__ import annotations

import math

from aiohttp import web

from cdn_core.node.policy.buckets import LocalBuckets
from control_plane.api import CLOCK, CONFIG, ApiError, Handler
from control_plane.auth import ACCESS, AUTHN, NODE, PRINCIPAL, credential, describe_roles
from control_plane.scope import refuse_elsewhere

API_BUCKETS = web.AppKey("api_buckets", LocalBuckets)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    app = request.app
    roles = app[ACCESS].get(request.match_info.route)
    if not roles:
        return await handler(request)
    presented = credential(request)
    who = app[AUTHN].authenticate(presented) if presented else None
    if who is None or who.role != NODE:
        limits = app[CONFIG].api
        bucket = who.name if who is not None else f"addr:{request.remote}"
        v = app[API_BUCKETS].take(bucket, limits.rate, limits.burst, app[CLOCK].monotonic())
        if not v.allowed:
            wait = str(max(1, math.ceil(v.retry_after)))
            raise ApiError(429, f"too many API requests: retry in {wait} s", {"Retry-After": wait})
    route = request.match_info.route.resource
    where = f"{request.method} {route.canonical if route is not None else request.path}"
    if presented is None:
        raise ApiError(
            401,
            f"{where} needs an API key: send 'Authorization: Bearer <key>'",
            {"WWW-Authenticate": 'Bearer realm="cdn"'},
        )
    if who is None:
        raise ApiError(
            401, "invalid or revoked API key", {"WWW-Authenticate": 'Bearer realm="cdn"'}
        )
    if who.role not in roles:
        raise ApiError(403, f"role {who.role!r} may not {where}: it needs {describe_roles(roles)}")
    refuse_elsewhere(who.services, request.path)
    request[PRINCIPAL] = who
    return await handler(request)
