"""Purge fan-out: deliver each purge to every mid-tier and edge node and record the acks.

Order: all mid-tier nodes first (concurrently), then all edges (concurrently). The mid
tier goes first so that an edge, missing after its own purge, cannot refill from a mid
tier that still holds the old object.

Delivery to one node: ``POST {admin_url}/purge`` with JSON
``{"id", "seq", "type", "value", "soft"}`` and a per-node timeout (seconds). A ``200``
whose JSON object carries ``"purged": <int>`` is an acknowledgement; anything else
(status, body, timeout, refused connection) is a failure with an error text.

Nodes that did not acknowledge are retried by :meth:`PurgeFanout.retry_loop` in seq
order every ``retry_interval`` seconds until they do (on the leader replica only). While
a mid-tier node has not acknowledged, the purge's edge acks are reopened (``pending``)
and retries leave the edges alone; they are purged again once every mid tier acked,
since they may have refilled from it meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from cdn_core.clock import Clock
from control_plane.db import DatabaseUnavailable, OutageNotice
from control_plane.metrics import ControlPlaneMetrics
from control_plane.models import Ack, Purge
from control_plane.store import Store

log = logging.getLogger("cdn.control_plane.purge")

_ERROR_TEXT_MAX = 200


class PurgeFanout:
    """Sends purges to nodes and keeps retrying those that failed.

    Owns the tasks it starts (``spawn``); :meth:`close` cancels and awaits them.
    """

    def __init__(
        self,
        store: Store,
        session: aiohttp.ClientSession,
        clock: Clock,
        metrics: ControlPlaneMetrics,
        *,
        node_timeout: float,
        retry_interval: float,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._session = session
        self._clock = clock
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=node_timeout)
        self._retry_interval = retry_interval
        self._leading = leading
        self._outage = OutageNotice(log, "purge retries")
        self._inflight: set[str] = set()  # purge ids being fanned out right now
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task owned by this object (awaited or cancelled on close)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel running fan-outs; their unacked nodes stay pending in the store and are
        retried after the next start."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self, purge: Purge) -> Purge:
        """Fan ``purge`` out (mid tier, then edges); returns it with every node's result."""
        self._inflight.add(purge.id)
        try:
            mids = [a for a in purge.acks if a.tier == "mid"]
            edges = [a for a in purge.acks if a.tier != "mid"]
            await asyncio.gather(*(self._deliver(purge, a) for a in mids))
            await asyncio.gather(*(self._deliver(purge, a) for a in edges))
        finally:
            self._inflight.discard(purge.id)
        done = await self._store.get_purge(purge.id)
        if done is None:  # cannot happen: purges are never deleted
            raise RuntimeError(f"purge {purge.id} vanished from the store")
        self._metrics.purges.labels(done.state).inc()
        if not purge.acks:
            self._observe(done)
        return done

    async def retry_loop(self) -> None:
        """Forever: wait ``retry_interval`` seconds, then :meth:`retry_pass` when this
        replica leads (``leading()``; one replica retries for all of them)."""
        while True:
            await asyncio.sleep(self._retry_interval)
            if not self._leading():
                continue
            try:
                await self.retry_pass()
                self._outage.ok()
            except DatabaseUnavailable as exc:
                self._outage.failed(exc)
            except Exception:
                # Keep retrying: one bad pass (a locked database, a bug) must not end
                # delivery of every later purge.
                log.exception("purge retry pass failed")

    async def retry_pass(self) -> None:
        """Re-send every open purge, in seq order, to its nodes that have not acked.

        A node that fails is skipped for the rest of the pass, so it never receives a
        purge before an earlier one it has not acknowledged.
        """
        for done in await self._store.complete_settled(self._clock.time()):
            self._observe(done)
        down: set[str] = set()
        for listed in await self._store.open_purges(exclude=self._inflight):
            if listed.id in self._inflight:
                # Its first fan-out (or an earlier step of this pass) began while the
                # list was read: sending now would purge its mid tiers twice at once and
                # could reach an edge before the second mid purge ended.
                continue
            self._inflight.add(listed.id)
            try:
                # The acks may have moved since the list was read.
                purge = await self._store.get_purge(listed.id)
                if purge is not None and purge.completed_at is None:
                    await self._retry_one(purge, down)
            finally:
                self._inflight.discard(listed.id)

    async def _retry_one(self, purge: Purge, down: set[str]) -> None:
        def due(a: Ack) -> bool:
            return a.state != "acked" and a.node not in down and a.admin_url is not None

        mids = [a for a in purge.acks if a.tier == "mid" and due(a)]
        reopened: set[str] = set()
        if mids:
            # An edge purged while a mid-tier node still held the object may have refilled
            # from it: its ack no longer counts, and it is purged again once the mid acks.
            reopened = {a.node for a in purge.acks if a.tier != "mid" and a.state == "acked"}
            await self._store.reopen(purge.id, reopened)
        results = await asyncio.gather(*(self._deliver(purge, a) for a in mids))
        down.update(a.node for a, ok in zip(mids, results, strict=True) if not ok)
        acked_now = {a.node for a, ok in zip(mids, results, strict=True) if ok}
        if any(a.tier == "mid" and a.state != "acked" and a.node not in acked_now
               for a in purge.acks):
            # An edge purged now could refill from that mid tier again: the edges wait
            # until every mid has acked (then they are purged once more).
            return
        mid_recovered = any(results)
        edges = [
            a
            for a in purge.acks
            if a.tier != "mid"
            and a.node not in down
            and a.admin_url is not None
            and (due(a) or (mid_recovered and a.node in reopened))
        ]
        results = await asyncio.gather(*(self._deliver(purge, a) for a in edges))
        down.update(a.node for a, ok in zip(edges, results, strict=True) if not ok)

    async def _deliver(self, purge: Purge, ack: Ack) -> bool:
        """Send ``purge`` to one node and record the answer; True when it acked."""
        purged, error = await self._send(purge, ack)
        ok = error is None
        done = await self._store.record_result(
            purge.id, ack.node, ok=ok, purged=purged, error=error, now=self._clock.time()
        )
        if done is not None:
            self._observe(done)
        if not ok:
            log.warning("purge seq %d not acked by %s: %s", purge.seq, ack.node, error)
        return ok

    async def _send(self, purge: Purge, ack: Ack) -> tuple[int | None, str | None]:
        """POST the purge; returns ``(purged, None)`` on an ack, ``(None, error)`` else."""
        if ack.admin_url is None:
            return None, "node is no longer registered"
        url = ack.admin_url.rstrip("/") + "/purge"
        try:
            async with self._session.post(url, json=purge.message(), timeout=self._timeout) as resp:
                text = await resp.text(errors="replace")
                if resp.status != 200:
                    return None, f"HTTP {resp.status}: {text.strip()[:_ERROR_TEXT_MAX]}"
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    return None, f"ack is not JSON: {text.strip()[:_ERROR_TEXT_MAX]}"
        except TimeoutError:
            return None, f"no answer within {self._timeout.total} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:_ERROR_TEXT_MAX] or "request failed"
        purged = data.get("purged") if isinstance(data, dict) else None
        if not isinstance(purged, int) or isinstance(purged, bool) or purged < 0:
            return None, f"ack lacks a 'purged' count: {text.strip()[:_ERROR_TEXT_MAX]}"
        return purged, None

    def _observe(self, purge: Purge) -> None:
        if purge.completed_at is not None:
            latency = max(0.0, purge.completed_at - purge.created_at)
            self._metrics.purge_latency.observe(latency)
