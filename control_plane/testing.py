"""Helpers for tests of the control plane: a fake cache node's admin app (``POST /purge``,
``POST /prewarm``, ``GET /healthz``, ``GET /status``), and credentials.

The fake node records each purge and prewarm call, can fail (HTTP 500) or answer slowly,
and appends ``("start"|"end", name)`` to a shared ``events`` list so tests can check
fan-out order. With ``token`` set it answers 401 to calls without that bearer token.
:func:`register_fake` serves one and registers it with a control plane under test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from control_plane.config import AuthConfig

ADMIN_KEY = "test-admin-key"
READER_KEY = "test-reader-key"
NODE_TOKEN = "test-node-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
NODE = {"Authorization": f"Bearer {NODE_TOKEN}"}


async def register_fake(
    client: Any, aiohttp_server: Any, name: str, tier: str, **kw: Any
) -> FakeNode:
    """Serve a :class:`FakeNode` (pytest-aiohttp's ``aiohttp_server``) and register it as
    ``name`` through ``client`` (a test client of the control plane with the admin key).
    ``kw`` goes to :class:`FakeNode`; its token is :data:`NODE_TOKEN`."""
    node = FakeNode(name, tier, token=NODE_TOKEN, **kw)
    server = await aiohttp_server(node.app())
    node.admin_url = str(server.make_url("")).rstrip("/")
    body = {"tier": tier, "host": "127.0.0.1", "port": server.port, "admin_url": node.admin_url}
    resp = await client.put(f"/v1/nodes/{name}", json=body)
    assert resp.status == 200, await resp.text()
    return node


def auth_config(directory: Path) -> AuthConfig:
    """Bootstrap files in ``directory`` holding :data:`ADMIN_KEY`, :data:`READER_KEY` and
    :data:`NODE_TOKEN`, and the auth settings that name them."""
    files = {}
    for name, secret in (("admin.key", ADMIN_KEY), ("reader.key", READER_KEY)):
        files[name] = directory / name
        files[name].write_text(secret + "\n")
    token = directory / "node.token"
    token.write_text(NODE_TOKEN + "\n")
    return AuthConfig(
        admin_key_file=str(files["admin.key"]),
        reader_key_file=str(files["reader.key"]),
        node_token_file=str(token),
        admin_key_env=None,
    )


class FakeNode:
    """One fake node. Flip ``fail`` or ``delay`` (seconds) at any time."""

    def __init__(
        self,
        name: str,
        tier: str,
        *,
        events: list[tuple[str, str]] | None = None,
        fail: bool = False,
        delay: float = 0.0,
        purged: int = 1,
        status: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> None:
        self.name = name
        self.tier = tier
        self.events = events if events is not None else []
        self.fail = fail
        self.delay = delay
        self.purged = purged
        self.status = status if status is not None else {"cache": {"entries": 0}}
        self.token = token
        self.calls: list[dict[str, Any]] = []
        self.prewarms: list[list[str]] = []
        # What the node's "data port" (the same server) answers to GET: path -> body;
        # the Host of each such request is noted in page_hosts.
        self.pages: dict[str, bytes] = {}
        self.page_hosts: list[str] = []
        self.admin_url = ""  # set by whoever serves app()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/purge", self._purge)
        app.router.add_post("/prewarm", self._prewarm)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/status", self._status)
        app.router.add_get("/{page:.*}", self._page)
        return app

    async def _page(self, request: web.Request) -> web.Response:
        self.page_hosts.append(request.headers.get("Host", ""))
        body = self.pages.get(request.path_qs)
        if body is None:
            return web.Response(status=404, text="no such page")
        return web.Response(body=body, content_type="application/xml")

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "bad control token"}, status=401)
        return None

    async def _prewarm(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        self.events.append(("prewarm", self.name))
        urls = (await request.json())["urls"]
        self.prewarms.append(urls)
        if self.fail:
            return web.json_response({"error": "boom"}, status=500)
        results = {u: "fwd=uri-miss; fwd-status=200; stored" for u in urls}
        return web.json_response({"node": self.name, "results": results})

    async def _purge(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        self.events.append(("start", self.name))
        body = await request.json()
        self.calls.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        self.events.append(("end", self.name))
        if self.fail:
            return web.Response(status=500, text="boom")
        return web.json_response({"node": self.name, "purged": self.purged, "seq": body["seq"]})

    async def _healthz(self, _: web.Request) -> web.Response:
        if self.fail:
            return web.json_response({"status": "unhealthy"}, status=503)
        return web.json_response({"status": "ok", "name": self.name, "role": self.tier})

    async def _status(self, _: web.Request) -> web.Response:
        return web.json_response({"name": self.name, "role": self.tier, **self.status})
