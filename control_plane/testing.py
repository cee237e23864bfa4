"""A fake cache node's admin app for tests of the control plane (and anything that needs a
purge target): ``POST /purge``, ``GET /healthz``, ``GET /status``.

It records each purge call, can fail (HTTP 500) or answer slowly, and appends
``("start"|"end", name)`` to a shared ``events`` list so tests can check fan-out order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


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
    ) -> None:
        self.name = name
        self.tier = tier
        self.events = events if events is not None else []
        self.fail = fail
        self.delay = delay
        self.purged = purged
        self.status = status if status is not None else {"cache": {"entries": 0}}
        self.calls: list[dict[str, Any]] = []
        self.admin_url = ""  # set by whoever serves app()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/purge", self._purge)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/status", self._status)
        return app

    async def _purge(self, request: web.Request) -> web.Response:
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
