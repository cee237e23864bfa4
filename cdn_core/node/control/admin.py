"""A node's admin endpoints beyond /healthz, /status and /metrics: ``POST /purge`` and
``POST /prewarm``. Both accept only the control plane's credentials: ``Authorization:
Bearer <node token>`` (``control.token_file``); without it they answer 401, and 403 on a
node that has no token configured (they are then disabled).

Purge body (JSON): ``{"type": "url"|"prefix"|"host"|"tag"|"all", "value": str,
"soft": bool, "id": str, "seq": int}``; answer 200 ``{"node", "purged", "seq", "id"}``,
or 400 ``{"error": ...}`` for a bad body. The seq is remembered for catch-up
(:mod:`cdn_core.node.control.sync`).

Prewarm body: ``{"urls": [absolute URL, ...]}`` (at most 1000); each URL is fetched
through this tier (:meth:`cdn_core.node.proxy.handler.CachingProxy.prewarm`, eight at a
time) and stored if RFC 9111 allows; answer 200
``{"node", "results": {url: Cache-Status text | "error: ..."}}``.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, Protocol

from aiohttp import web

from cdn_core.node.exchange.keys import key_from_url, normalize_host
from cdn_core.store import PurgeSelector

PURGE_TYPES = ("url", "prefix", "host", "tag", "service", "all")
PREWARM_MAX_URLS = 1000
PREWARM_CONCURRENCY = 8


class ControlledNode(Protocol):
    """What the routes need of the node (:class:`cdn_core.node.app.Node` is one)."""

    @property
    def name(self) -> str:
        """The node's name, as registered with the control plane."""
        ...

    @property
    def control_token(self) -> str | None:
        """The node token the control plane authenticates with; None: routes disabled."""
        ...

    def purge(self, selector: PurgeSelector) -> int:
        """Apply a purge; returns the number of entries removed or marked stale."""
        ...

    def note_applied(self, seq: Any) -> None:
        """Remember a pushed purge's sequence number (``None``: none) for catch-up."""
        ...

    async def prewarm(self, url: str) -> str:
        """Fetch ``url`` through this tier; the Cache-Status parameters of the outcome.

        Raises:
            ValueError: ``url`` is not an absolute http(s) URL.
        """
        ...


def refuse(node: ControlledNode, request: web.Request) -> web.Response | None:
    """401/403 unless the request carries the node token; None when it does."""
    token = node.control_token
    if not token:
        return web.json_response(
            {"error": "disabled: this node has no control token (--control-token-file)"},
            status=403,
        )
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token):
        return web.json_response(
            {"error": "needs the control plane's node token (Authorization: Bearer ...)"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="cdn-node"'},
        )
    return None


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


async def _control_body(
    node: ControlledNode, request: web.Request
) -> tuple[Any, web.Response | None]:
    """The JSON body of a control-plane call, or the response refusing it (wrong or
    missing node token: 401/403; not JSON: 400)."""
    refused = refuse(node, request)
    if refused is not None:
        return None, refused
    try:
        return await request.json(), None
    except (ValueError, RecursionError):
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, as is an integer of
        # more digits than Python converts; RecursionError: nesting too deep to parse.
        return None, web.json_response({"error": "body must be JSON"}, status=400)


def add_node_routes(app: web.Application, node: ControlledNode) -> None:
    """Add ``POST /purge`` and ``POST /prewarm`` (module docstring) to ``app``."""

    async def purge(request: web.Request) -> web.Response:
        body, refused = await _control_body(node, request)
        if refused is not None:
            return refused
        try:
            selector = selector_from_json(body)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        count = node.purge(selector)
        seq = body.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int):
            seq = None  # the control plane numbers purges with integers; nothing else is one
        node.note_applied(seq)
        return web.json_response(
            {"node": node.name, "purged": count, "seq": seq, "id": body.get("id")}
        )

    async def prewarm(request: web.Request) -> web.Response:
        body, refused = await _control_body(node, request)
        if refused is not None:
            return refused
        urls = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            return web.json_response({"error": "urls: a non-empty list of URLs"}, status=400)
        if len(urls) > PREWARM_MAX_URLS:
            return web.json_response(
                {"error": f"urls: at most {PREWARM_MAX_URLS} per call"}, status=400
            )
        limit = asyncio.Semaphore(PREWARM_CONCURRENCY)

        async def one(url: str) -> str:
            async with limit:
                try:
                    return await node.prewarm(url)
                except ValueError as exc:
                    return f"error: {exc}"

        results = await asyncio.gather(*(one(u) for u in urls))
        return web.json_response(
            {"node": node.name, "results": dict(zip(urls, results, strict=True))}
        )

    app.router.add_post("/purge", purge)
    app.router.add_post("/prewarm", prewarm)
