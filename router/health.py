"""Health and load probes of each edge's admin app: ``GET /healthz`` (200 = healthy; the
round-trip time feeds the probe RTT) and, after a good probe, ``GET /status`` (JSON with
``in_flight`` requests and ``cpu_seconds`` of process CPU time).

One task per edge probes every ``health.interval`` seconds; a refused connection, a
timeout (``health.timeout`` seconds) or a non-200 answer is a failed probe. The results go
to the :class:`router.table.EdgeTable`, which applies ``fall``/``rise``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import aiohttp

from cdn_core.clock import Clock
from router.config import HealthSettings
from router.table import EdgeSpec, EdgeTable

log = logging.getLogger("cdn.router.health")

# What a probe can raise: aiohttp's errors, timeouts, socket errors, and a bad JSON body.
PROBE_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)


class HealthChecker:
    """Keeps one probe task per edge in ``table`` (edges may come and go while it runs);
    ``on_change(edge, "up"|"down")`` is called on every health transition."""

    def __init__(
        self,
        table: EdgeTable,
        settings: HealthSettings,
        clock: Clock,
        session: aiohttp.ClientSession,
        on_change: Callable[[str, str], None],
    ) -> None:
        self._table = table
        self._cfg = settings
        self._clock = clock
        self._session = session
        self._on_change = on_change
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._tasks: dict[str, tuple[EdgeSpec, asyncio.Task[None]]] = {}

    def sync(self) -> None:
        """Start probes for new edges and stop those of removed or moved ones."""
        specs = {s.name: s for s in self._table.specs()}
        for name, (spec, task) in list(self._tasks.items()):
            if specs.get(name) != spec:
                task.cancel()
                del self._tasks[name]
        for name, spec in specs.items():
            if name not in self._tasks:
                task = asyncio.create_task(self._loop(spec), name=f"probe-{name}")
                self._tasks[name] = (spec, task)

    async def run(self) -> None:
        """Reconcile probe tasks with the table and age out client RTT samples, forever.
        The first round of probes ends when every edge was probed or after
        ``health.first_round`` seconds, whichever is first."""
        timer = asyncio.get_running_loop().call_later(
            self._cfg.first_round, self._table.end_first_round
        )
        try:
            while True:
                self.sync()
                self._table.expire(self._clock.monotonic())
                await asyncio.sleep(self._cfg.interval)
        finally:
            timer.cancel()
            await self.close()

    async def close(self) -> None:
        tasks = [t for _, t in self._tasks.values()]
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _loop(self, spec: EdgeSpec) -> None:
        while True:
            started = self._clock.monotonic()
            await self.probe(spec)
            elapsed = self._clock.monotonic() - started
            await asyncio.sleep(max(0.0, self._cfg.interval - elapsed))

    async def probe(self, spec: EdgeSpec) -> bool:
        """Probe one edge once and record the result; returns whether it was healthy."""
        t0 = self._clock.monotonic()
        error: str | None = None
        reachable = False
        try:
            async with self._session.get(
                spec.probe_base + self._cfg.path, timeout=self._timeout
            ) as resp:
                await resp.read()
                reachable = True
                ok = resp.status == 200
                if not ok:
                    error = f"HTTP {resp.status}"
        except PROBE_ERRORS as exc:
            ok = False
            error = _describe(exc)
        now = self._clock.monotonic()
        change = self._table.record_probe(
            spec.name, ok, (now - t0) * 1000.0, now, error, reachable=reachable
        )
        if change is not None:
            log.info("edge %s is %s (%s)", spec.name, change, error or "probe ok")
            self._on_change(spec.name, change)
        if ok:
            await self._scrape(spec)
        return ok

    async def _scrape(self, spec: EdgeSpec) -> None:
        try:
            async with self._session.get(
                spec.probe_base + self._cfg.status_path, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    return
                body = await resp.json(content_type=None)
        except PROBE_ERRORS as exc:
            log.debug("status of %s unavailable: %s", spec.name, _describe(exc))
            return
        in_flight, cpu = parse_status(body)
        if in_flight is not None or cpu is not None:
            self._table.record_load(spec.name, in_flight or 0, cpu, self._clock.monotonic())


def parse_status(body: Any) -> tuple[int | None, float | None]:
    """``(in_flight, cpu_seconds)`` from an edge's ``/status`` JSON; None for a field
    that is missing or not a finite non-negative number."""
    if not isinstance(body, dict):
        return None, None
    raw_in, raw_cpu = body.get("in_flight"), body.get("cpu_seconds")
    in_flight = (
        int(raw_in)
        if isinstance(raw_in, int | float)
        and not isinstance(raw_in, bool)
        and math.isfinite(raw_in)
        and raw_in >= 0
        else None
    )
    cpu = (
        float(raw_cpu)
        if isinstance(raw_cpu, int | float)
        and not isinstance(raw_cpu, bool)
        and math.isfinite(raw_cpu)
        and raw_cpu >= 0
        else None
    )
    return in_flight, cpu


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:200]
