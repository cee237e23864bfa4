"""A node's admin endpoints beyond /healthz, /status and /metrics: ``POST /purge``.

Purge body (JSON): ``{"type": "url"|"prefix"|"host"|"tag"|"all", "value": str,
"soft": bool, "id": str, "seq": int}``; answer 200 ``{"node", "purged", "seq", "id"}``,
or 400 ``{"error": ...}`` for a bad body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cdn_core.node.keys import key_from_url, normalize_host
from cdn_core.store import PurgeSelector

if TYPE_CHECKING:
    from cdn_core.node.app import Node

PURGE_TYPES = ("url", "prefix", "host", "tag", "all")


def selector_from_json(body: Any) -> PurgeSelector:
    """Validate a purge body and normalise its value to the store's key form.

    Raises:
        ValueError: with a message naming the bad field.
    """
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    kind = body.get("type")
    if kind not in PURGE_TYPES:
        raise ValueError(f"type must be one of {', '.join(PURGE_TYPES)}")
    value = body.get("value") or ""
    if kind != "all" and (not isinstance(value, str) or not value):
        raise ValueError("value is required for this purge type")
    soft = body.get("soft", False)
    if not isinstance(soft, bool):
        raise ValueError("soft must be a boolean")
    if kind == "url":
        value = key_from_url(value)
    elif kind == "prefix":
        scheme, _, rest = value.partition("://")
        if scheme not in ("http", "https") or not rest:
            raise ValueError("value must be an absolute http(s) URL prefix")
        host, slash, path = rest.partition("/")
        value = f"{scheme}://{normalize_host(host)}{slash}{path}"
    elif kind == "host":
        value = normalize_host(value)
    return PurgeSelector(kind, value, soft)


def add_node_routes(app: web.Application, node: Node) -> None:
    async def purge(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "body must be JSON"}, status=400)
        try:
            selector = selector_from_json(body)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        count = node.purge(selector)
        return web.json_response(
            {
                "node": node.config.name,
                "purged": count,
                "seq": body.get("seq"),
                "id": body.get("id"),
            }
        )

    app.router.add_post("/purge", purge)
