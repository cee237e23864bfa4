"""API keys: ``/v1/keys`` (admin role only).

- ``POST /v1/keys`` body ``{"name": str, "role": "admin"|"purger"|"reader"}`` -> 201
  ``{"id", "name", "role", "created_at", "revoked_at": null, "key": "cdn_<id>.<secret>"}``;
  the key text is shown only in this answer (the store keeps a salted hash).
- ``GET /v1/keys`` -> ``{"keys": [key without its text, ...]}``, oldest first.
- ``DELETE /v1/keys/{id}`` -> 200 the revoked key; it is refused from then on. 404 if
  unknown.
"""

from __future__ import annotations

import re

from aiohttp import web

from control_plane.api import CLOCK, STORE, ApiError, body_of, read_body
from control_plane.auth import ADMIN_ONLY, AUTHN, add_route, make_key
from control_plane.models import KeyIn

_ID = re.compile(r"^[0-9a-f]{12}$")


async def create_key(request: web.Request) -> web.Response:
    body = await read_body(request, KeyIn)
    key_id, text, salt, digest = make_key()
    key = await request.app[STORE].add_key(
        key_id,
        name=body.name,
        role=body.role,
        salt=salt,
        digest=digest,
        now=request.app[CLOCK].time(),
        services=body.services,
    )
    request.app[AUTHN].remember(key)
    return body_of({**key.to_json(), "key": text}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    keys = await request.app[STORE].list_keys()
    return body_of({"keys": [k.to_json() for k in keys]})


async def revoke_key(request: web.Request) -> web.Response:
    key_id = request.match_info["id"]
    if not _ID.match(key_id):
        raise ApiError(404, f"no API key with id {key_id!r}")
    key = await request.app[STORE].revoke_key(key_id, request.app[CLOCK].time())
    if key is None:
        raise ApiError(404, f"no API key with id {key_id!r}")
    request.app[AUTHN].remember(key)
    return body_of(key.to_json())


def add_routes(app: web.Application) -> None:
    add_route(app, "POST", "/v1/keys", create_key, ADMIN_ONLY)
    add_route(app, "GET", "/v1/keys", list_keys, ADMIN_ONLY)
    add_route(app, "DELETE", "/v1/keys/{id}", revoke_key, ADMIN_ONLY)
