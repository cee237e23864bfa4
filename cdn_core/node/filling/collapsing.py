"""Request collapsing: one upstream fetch per cache key at a time, its result shared with
every request that arrives while it runs (when the response may serve them: shareable,
and the same secondary key, RFC 9111 4.1), and hit-for-miss: keys whose responses may not
be shared skip collapsing for a while, so that their requests go upstream in parallel
instead of queueing behind each other (DESIGN.md "Miss path")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cdn_core.clock import Clock
from cdn_core.http_cache.vary import secondary_key
from cdn_core.node.exchange.request import Request
from cdn_core.node.filling.fill import FillResult
from cdn_core.node.observe.metrics import NodeMetrics
from cdn_core.store import CacheStore, StoredResponse

Fetch = Callable[[str, Request, str, StoredResponse | None, str], Awaitable[FillResult]]
"""``fetch(key, request, target, stale entry or None, fwd)``: one upstream fetch."""


class Collapsing:
    """Collapses calls of ``fetch`` per key; ``spawn`` runs a task the proxy owns (the
    fetch outlives the request that started it)."""

    def __init__(
        self,
        fetch: Fetch,
        store: CacheStore,
        clock: Clock,
        metrics: NodeMetrics,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self._fetch = fetch
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.spawn = spawn
        self._inflight: dict[str, asyncio.Future[FillResult]] = {}
        self._hit_for_miss: dict[str, float] = {}

    def hit_for_miss(self, key: str, seconds: float) -> None:
        """Let requests for ``key`` go upstream uncollapsed for ``seconds``."""
        self._hit_for_miss[key] = self.clock.monotonic() + seconds

    async def collapsed(
        self, key: str, req: Request, target: str, stale: StoredResponse | None, fwd: str
    ) -> FillResult:
        """One upstream fetch per key at a time; waiters share its result when they may."""
        until = self._hit_for_miss.get(key)
        if until is not None:
            if until > self.clock.monotonic():
                return await self._fetch(key, req, target, stale, "bypass")
            del self._hit_for_miss[key]
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._inflight[key] = fut
            # The fetch is its own task, so a leader that disconnects does not cancel it.
            self.spawn(self._lead(key, req, target, stale, fwd, fut))
            return await asyncio.shield(fut)
        self.metrics.collapsed.inc()
        result = await asyncio.shield(fut)
        fill = result.fill
        if fill is not None:
            if fill.stored is None:
                await fill.decided()
            if fill.personal or fill.stored is None:
                # The body reflects the leader's request, or may yet (its scan is still
                # undecided past DECIDE_WITHIN_BYTES): never handed to another client.
                return await self._fetch(key, req, target, self.store.lookup(key, req.fields), fwd)
        m = result.meta
        if result.shareable and (
            not m.vary_names or secondary_key(m.vary_names, req.fields) == m.vary_key
        ):
            return FillResult(
                result.cache_status + "; collapsed", True, m, fill=result.fill, stale=result.stale
            )
        return await self._fetch(key, req, target, self.store.lookup(key, req.fields), fwd)

    async def _lead(
        self,
        key: str,
        req: Request,
        target: str,
        stale: StoredResponse | None,
        fwd: str,
        fut: asyncio.Future[FillResult],
    ) -> None:
        try:
            result = await self._fetch(key, req, target, stale, fwd)
            fut.set_result(result)
            if result.fill is not None and result.shareable:
                # Requests arriving while the body streams in join this fill.
                await result.fill.wait_done()
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._inflight.get(key) is fut:
                del self._inflight[key]
