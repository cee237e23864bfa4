"""Signed-URL keys the edges accept, rotated without downtime: ``/v1/signing-keys``.

Several keys are active at once (each URL names its key with ``kid``), so a rotation is:
add the new key, move the signers to it, remove the old key once its URLs expired.

- ``GET /v1/signing-keys`` -> ``{"version": int, "keys": [{"id", "secret"}]}``: the node
  token (edges fetch the list when the version in their heartbeat answer moved) or an
  admin key; secrets are never shown to other roles.
- ``PUT /v1/signing-keys/{id}`` ``{"secret": str (16+ chars)}`` -> 200 the key (admin).
- ``DELETE /v1/signing-keys/{id}`` -> 204 (admin); 404 when unknown.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import Field

from cdn_core.config import StrictModel
from control_plane.api import STORE, ApiError, body_of, read_body
from control_plane.auth import ADMIN_ONLY, NODE, add_route

SIGNING_KEYS = "signing_keys"
SIGNING_VERSION = "signing_version"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MIN_SECRET_CHARS = 16


class SigningKeyIn(StrictModel):
    secret: str = Field(min_length=MIN_SECRET_CHARS, max_length=512)


async def _load(request: web.Request) -> list[dict[str, Any]]:
    keys = await request.app[STORE].get_setting(SIGNING_KEYS)
    return list(keys or [])


async def _save(request: web.Request, keys: list[dict[str, Any]]) -> None:
    store = request.app[STORE]
    version = (await store.get_setting(SIGNING_VERSION) or 0) + 1
    await store.set_setting(SIGNING_KEYS, keys)
    await store.set_setting(SIGNING_VERSION, version)


def _key_id(request: web.Request) -> str:
    key_id = request.match_info["id"]
    if not _KEY_ID.match(key_id):
        raise ApiError(400, "id: 1-32 letters, digits, '-' or '_'")
    return key_id


async def list_keys(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return body_of({"version": await store.get_setting(SIGNING_VERSION) or 0,
                    "keys": await _load(request)})


async def put_key(request: web.Request) -> web.Response:
    key_id = _key_id(request)
    body = await read_body(request, SigningKeyIn)
    keys = [k for k in await _load(request) if k["id"] != key_id]
    keys.append({"id": key_id, "secret": body.secret})
    await _save(request, keys)
    return body_of({"id": key_id})


async def delete_key(request: web.Request) -> web.Response:
    key_id = _key_id(request)
    keys = await _load(request)
    kept = [k for k in keys if k["id"] != key_id]
    if len(kept) == len(keys):
        raise ApiError(404, f"no signing key {key_id!r}")
    await _save(request, kept)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/signing-keys", list_keys, ADMIN_ONLY | {NODE})
    add_route(app, "PUT", "/v1/signing-keys/{id}", put_key, ADMIN_ONLY)
    add_route(app, "DELETE", "/v1/signing-keys/{id}", delete_key, ADMIN_ONLY)
