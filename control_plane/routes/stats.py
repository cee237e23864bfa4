"""The network's recent numbers: ``GET /v1/stats/history[?since=T]`` (any API key).

Answers :meth:`control_plane.history.StatsHistory.to_json`: ``{"interval", "window",
"sampled_at", "points": [{"t", "tiers": {tier: {"rps", "hit_ratio", "healthy",
"nodes"}}}], "nodes": [latest view of each node]}``, the points after ``since`` (unix
seconds) when given, so pollers fetch only what is new.

Registering these routes also registers the sampler in the app's lifecycle: it runs
from startup to cleanup, one round every ``interval`` seconds, on the leader replica only
(one set of probes for the whole cluster). Another replica answers with the leader's
history (fetched with the caller's credentials), and with its own (likely empty) when
the leader cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from control_plane.api import (
    CLOCK,
    CONFIG,
    LIVE,
    METRICS,
    STORE,
    ApiError,
    body_of,
    is_leader,
    session_of,
)
from control_plane.auth import READ, add_route
from control_plane.history import StatsHistory, sample_forever
from control_plane.routes.nodes import FAILOVER
from control_plane.routes.status import node_status

HISTORY = web.AppKey("stats_history", StatsHistory)


async def sample_once(app: web.Application) -> None:
    """Probe every registered node once and record the result (and the gauges); nothing
    on a replica that does not lead."""
    if not is_leader(app):
        return
    session = session_of(app)
    timeout = aiohttp.ClientTimeout(total=app[CONFIG].status_timeout)
    store, metrics, history = app[STORE], app[METRICS], app[HISTORY]
    nodes = await store.list_nodes()
    entries = await asyncio.gather(*(node_status(session, n, timeout) for n in nodes))
    before = {(str(n["name"]), str(n["tier"])) for n in history.nodes}
    for _, tier, healthy in history.record(app[CLOCK].time(), list(entries)):
        metrics.health_changes.labels(tier, "up" if healthy else "down").inc()
    current = {(str(e["name"]), str(e["tier"])) for e in entries}
    for name, tier in before - current:
        metrics.node_up.remove(name, tier)
    for e in entries:
        metrics.node_up.labels(e["name"], e["tier"]).set(1 if e["healthy"] else 0)
    state = await store.get_setting(FAILOVER) or {}
    metrics.failover_forced.set(1 if state.get("forced") else 0)


async def _sampler(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(
        sample_forever(app[HISTORY], lambda: sample_once(app))
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def history(request: web.Request) -> web.Response:
    raw = request.query.get("since")
    since = None
    if raw is not None:
        try:
            since = float(raw)
        except ValueError:
            raise ApiError(400, f"since must be unix seconds, got {raw!r}") from None
        if not math.isfinite(since):
            raise ApiError(400, f"since must be unix seconds, got {raw!r}")
    leader = await _from_leader(request)
    if leader is not None:
        return body_of(leader)
    return body_of(request.app[HISTORY].to_json(since))


async def _from_leader(request: web.Request) -> object | None:
    """The leader's answer to this same request, when another replica leads and answers."""
    cluster = request.app[LIVE].cluster
    url = await cluster.leader_url() if cluster is not None else None
    if url is None or "Authorization" not in request.headers:
        return None
    timeout = aiohttp.ClientTimeout(total=request.app[CONFIG].status_timeout)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                url + request.path_qs,
                headers={"Authorization": request.headers["Authorization"]}) as resp:
            if resp.status == 200:
                return await resp.json()
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        pass
    return None


def add_routes(app: web.Application) -> None:
    app[HISTORY] = StatsHistory()
    # After the main lifecycle (which opens the store and the node session).
    app.cleanup_ctx.append(_sampler)
    add_route(app, "GET", "/v1/stats/history", history, READ)
