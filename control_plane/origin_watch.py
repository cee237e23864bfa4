"""Automatic origin failover: the control plane's verdict on the origin, and the
tier-wide serve-stale mode it switches on and off.

Every ``failover.interval`` seconds the control plane probes the registered origin nodes
(their admin ``/healthz``) and reads every mid tier's ``/status``. A round is *failing*
when origins are registered and none is healthy, or when mid tiers report upstreams and
none of them reaches any (a mid marks an upstream down on refused connections, timeouts
and 5xx answers on real traffic: this catches an origin whose health check passes while
it answers content with 500). It is *healthy* when some evidence exists and neither holds;
without origins or mid tiers it says nothing.

After ``fall`` failing rounds in a row the origin is *down*: unless failover is already
forced, the control plane forces it, marked ``auto`` (every mid tier learns it from its
next heartbeat answer and answers whatever it holds, stale included, without asking the
origin; see :mod:`cdn_core.node.policy.failover`). After ``rise`` healthy rounds the origin is
*up* again and an ``auto`` failover is lifted; the mid tiers then revalidate on demand,
one request per key per tier (request collapsing), so the origin sees no herd. An
operator's own ``PUT /v1/origins/failover`` always wins: a manual failover is never lifted
here, and a failover the operator turned off stays off until the origin next goes down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiohttp import web

from control_plane.api import CLOCK, CONFIG, METRICS, STORE, is_leader, session_of
from control_plane.db import DatabaseUnavailable, OutageNotice
from control_plane.routes.nodes import FAILOVER
from control_plane.routes.status import node_status

log = logging.getLogger("cdn.control_plane.failover")

State = Literal["up", "down"]


def judge(origins: list[dict[str, Any]], mids: list[dict[str, Any]]) -> tuple[bool | None, str]:
    """One round's verdict from ``/v1/status``-style entries of the origin and mid-tier
    nodes: ``(True, why)`` failing, ``(False, why)`` healthy, ``(None, why)`` no
    evidence."""
    evidence = False
    if origins:
        evidence = True
        if not any(o.get("healthy") for o in origins):
            errors = "; ".join(str(o.get("error") or "unhealthy") for o in origins)
            return True, f"no origin passes its health check ({errors})"
    upstreams = []
    for m in mids:
        status = m.get("status")
        if isinstance(status, dict) and isinstance(status.get("upstreams"), list):
            upstreams += [u for u in status["upstreams"] if isinstance(u, dict)]
    if upstreams:
        evidence = True
        if not any(u.get("up") for u in upstreams):
            return True, "no mid tier reaches an origin (refused, timed out or 5xx)"
    if not evidence:
        return None, "no origin or mid tier registered"
    return False, "origin healthy"


def judge_service(mids: list[dict[str, Any]], service: str) -> tuple[bool | None, str]:
    """One round's verdict on ``service``'s own origins, from what the mid tiers' pools of
    that service report (``/status`` ``services.upstreams``; health per origin per
    service): failing when mid tiers report its origins and none reaches any."""
    upstreams = []
    for m in mids:
        status = m.get("status")
        services = status.get("services") if isinstance(status, dict) else None
        pools = services.get("upstreams") if isinstance(services, dict) else None
        found = pools.get(service) if isinstance(pools, dict) else None
        if isinstance(found, list):
            upstreams += [u for u in found if isinstance(u, dict)]
    if not upstreams:
        return None, f"no mid tier reports origins of service {service}"
    if not any(u.get("up") for u in upstreams):
        return True, f"no mid tier reaches an origin of service {service}"
    return False, f"origins of service {service} healthy"


FLAP_WINDOW = 30.0  # seconds: an origin that falls again this soon after rising was not back
MAX_BACKOFF = 32  # the most the rise threshold is multiplied by


@dataclass
class OriginWatch:
    """Streak counting with hysteresis: ``fall`` failing rounds make the origin down,
    ``rise`` healthy rounds make it up.

    While failover is forced the mid tiers stop asking the origin, so their reports turn
    healthy without proof (their passive marks expire): lifting failover is then a trial,
    as a circuit breaker's half-open state is. An origin that falls again within
    :data:`FLAP_WINDOW` seconds of rising doubles the healthy rounds the next rise needs
    (up to :data:`MAX_BACKOFF` times ``rise``); staying up that long resets it."""

    fall: int
    rise: int
    state: State | None = None
    reason: str = ""
    since: float | None = None
    rise_needed: int = 0
    _streak: int = 0
    _streak_failing: bool | None = None
    _recovered = False  # the current "up" followed a "down" (a trial)

    def __post_init__(self) -> None:
        self.rise_needed = self.rise_needed or self.rise

    def observe(self, failing: bool | None, reason: str, now: float) -> State | None:
        """Count one round; returns the new state when it changed, else None."""
        if failing is None:
            self._streak, self._streak_failing = 0, None
            return None
        if failing is self._streak_failing:
            self._streak += 1
        else:
            self._streak, self._streak_failing = 1, failing
        recently_up = (
            self.state == "up"
            and self._recovered
            and self.since is not None
            and now - self.since < FLAP_WINDOW
        )
        if not failing and self.state == "up" and not recently_up:
            self.rise_needed = self.rise  # up for a while: back to the configured threshold
        target: State = "down" if failing else "up"
        if target == self.state or self._streak < (self.fall if failing else self.rise_needed):
            return None
        if target == "down" and recently_up:
            self.rise_needed = min(self.rise_needed * 2, self.rise * MAX_BACKOFF)
        self._recovered = target == "up" and self.state == "down"
        self.state, self.reason, self.since = target, reason, now
        return target

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason or None,
            "since": self.since,
            "rise_needed": self.rise_needed,
        }


WATCH = web.AppKey("origin_watch", OriginWatch)
# The leader's verdict, recorded on every change so that every replica can show it.
WATCH_SETTING = "origin_watch"
SERVICE_WATCHES = web.AppKey("service_watches", dict)  # service name -> OriginWatch


async def watch_once(app: web.Application) -> State | None:
    """Probe once, count the round, and force or lift an automatic failover on a change.
    Returns the change, if any."""
    session = session_of(app)
    timeout = aiohttp.ClientTimeout(total=app[CONFIG].status_timeout)
    store, watch = app[STORE], app[WATCH]
    origins, mids = await asyncio.gather(store.list_nodes("origin"), store.list_nodes("mid"))
    probed = await asyncio.gather(*(node_status(session, n, timeout) for n in origins + mids))
    failing, reason = judge(list(probed[: len(origins)]), list(probed[len(origins) :]))
    now = app[CLOCK].time()
    change = watch.observe(failing, reason, now)
    if change is not None:
        app[METRICS].origin_up.set(1 if change == "up" else 0)
        await store.set_setting(WATCH_SETTING, watch.to_json())
    state = await store.get_setting(FAILOVER) or {}
    if change == "down" and not state.get("forced"):
        await store.set_setting(
            FAILOVER,
            {**state, "forced": True, "auto": True, "reason": f"automatic: {reason}",
             "since": now},
        )
        app[METRICS].failover_forced.set(1)
        log.warning("origin down (%s): mid tiers now serve from cache", reason)
    elif change == "up" and state.get("forced") and state.get("auto"):
        # (failover forced for single services stays as the operator set it)
        await store.set_setting(FAILOVER, {**state, "forced": False, "auto": False,
                                           "reason": None, "since": None})
        app[METRICS].failover_forced.set(0)
        log.warning("origin back: automatic failover lifted, revalidation resumes")
    await _watch_services(app, list(probed[len(origins):]), now)
    return change


async def _watch_services(app: web.Application, mids: list[dict[str, Any]],
                          now: float) -> None:
    """The same verdicts per service, on each service's own origins: failover forced
    (``auto``) for that service alone when they are down, lifted when they are back; an
    operator's per-service failover is never lifted here."""
    store, watches = app[STORE], app[SERVICE_WATCHES]
    names = [v.service for v in await store.active_documents()]
    for gone in set(watches) - set(names):
        del watches[gone]
    cfg = app[CONFIG].failover
    for name in names:
        watch = watches.setdefault(name, OriginWatch(fall=cfg.fall, rise=cfg.rise))
        failing, reason = judge_service(mids, name)
        change = watch.observe(failing, reason, now)
        if change is None:
            continue
        state = await store.get_setting(FAILOVER) or {"forced": False}
        services = dict(state.get("services") or {})
        if change == "down" and name not in services:
            services[name] = {"reason": f"automatic: {reason}", "since": now, "auto": True}
            log.warning("service %s: %s; its mid tiers now serve from cache", name, reason)
        elif change == "up" and services.get(name, {}).get("auto"):
            del services[name]
            log.warning("service %s: origins back, automatic failover lifted", name)
        else:
            continue
        await store.set_setting(FAILOVER, {**state, "services": services})


async def _watch_forever(app: web.Application) -> None:
    interval = app[CONFIG].failover.interval
    outage = OutageNotice(log, "origin watch")
    while True:
        try:
            if is_leader(app):  # one replica watches for all of them
                await watch_once(app)
            outage.ok()
        except DatabaseUnavailable as exc:
            outage.failed(exc)
        except Exception:
            log.exception("origin watch round failed")
        await asyncio.sleep(interval)


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: runs the watch from startup to cleanup when ``failover.auto``."""
    task = None
    if app[CONFIG].failover.auto:
        task = asyncio.get_running_loop().create_task(_watch_forever(app))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def install(app: web.Application) -> None:
    """Register the watch state and its task in ``app`` (after the main lifecycle, which
    opens the store and the node session)."""
    cfg = app[CONFIG].failover
    app[WATCH] = OriginWatch(fall=cfg.fall, rise=cfg.rise)
    app[SERVICE_WATCHES] = {}
    app.cleanup_ctx.append(lifecycle)
