"""An edge killed (the router stops naming it) and the router restarted."""

from __future__ import annotations

import asyncio
import time

from control_plane.chaos.load import Resolver
from control_plane.chaos.scenarios.base import (
    Run,
    scenario,
)
from control_plane.chaos.topology import (
    SITE,
)


@scenario(
    "edge-killed",
    "edge SIGKILLed: the router stops naming it in < 5 s; re-resolving clients retrying "
    "once see 0 errors",
)
async def edge_killed(run: Run) -> None:
    paths = run.files(20)
    await run.warm(paths)
    probe = Resolver(run.topo.router, SITE, timeout=0.5)
    victim_addr = (await probe.query())[0][0]
    victim = run.topo.edge_names[victim_addr]
    run.numbers["victim"] = victim
    stop = asyncio.Event()
    clients = Resolver(run.topo.router, SITE, timeout=0.5)
    load = asyncio.create_task(
        run.load(paths, resolver=clients, max_seconds=12, max_requests=1500, rate=80, stop=stop)
    )
    try:
        await asyncio.sleep(1.0)
        run.stack.kill(victim)
        t0 = time.monotonic()
        last_named = t0
        unanswered = 0
        # until no answer named the victim for 1.5 s (at most 10 s)
        while time.monotonic() - t0 < 10 and time.monotonic() - last_named < 1.5:
            try:
                answer, _ = await probe.query()
            except Exception:  # noqa: BLE001 - any failed query counts as unanswered
                unanswered += 1
                answer = []
            if victim_addr in answer:
                last_named = time.monotonic()
            await asyncio.sleep(0.05)
        named_until = last_named - t0 if time.monotonic() - last_named >= 1.5 else None
    finally:
        stop.set()
        stats = await load
    failover = round(named_until, 2) if named_until is not None else None
    run.record("", stats)
    run.numbers["router_failover_s"] = failover
    run.numbers["dns_unanswered"] = unanswered
    run.check("router stops naming the dead edge in < 5 s", failover is not None and failover < 5)
    run.check("0 client errors for re-resolving clients", stats.errors == 0)
    run.check("every DNS query answered", unanswered == 0)
    # Restart it: the router takes it back after `rise` good probes.
    run.stack.restart(victim)
    await run.stack.wait_healthy(victim)
    t1 = time.monotonic()
    back = None
    while time.monotonic() - t1 < 10:
        if await run.router_edge_state(victim) == "up":
            back = round(time.monotonic() - t1, 2)
            break
        await asyncio.sleep(0.05)
    run.numbers["edge_back_in_rotation_s"] = back
    run.check("the restarted edge is back in rotation within 5 s", back is not None and back < 5)


@scenario(
    "router-restarted",
    "router SIGKILLed and restarted: answers resume at once; the data plane never notices",
)
async def router_restarted(run: Run) -> None:
    paths = run.files(20)
    await run.warm(paths)
    probe = Resolver(run.topo.router, SITE, timeout=0.2)
    load = asyncio.create_task(run.load(paths, max_seconds=4.0, max_requests=600))
    await asyncio.sleep(0.5)
    run.stack.kill("router")
    down = 0
    for _ in range(5):
        try:
            await probe.query()
        except Exception:  # noqa: BLE001 - the router is dead: any failure is expected
            down += 1
        await asyncio.sleep(0.1)
    run.stack.restart("router")
    t0 = time.monotonic()
    resumed: float | None = None
    answer: list[str] = []
    while time.monotonic() - t0 < 10:
        try:
            answer, _ = await probe.query()
        except Exception:  # noqa: BLE001 - not up yet
            await asyncio.sleep(0.05)
            continue
        if answer:
            resumed = time.monotonic() - t0
            break
    stats = await load
    run.record("", stats)
    run.numbers["dns_unanswered_while_down"] = down
    run.numbers["answers_resume_s"] = round(resumed, 2) if resumed is not None else None
    run.check("router was really down", down > 0)
    run.check("answers resume within 5 s of the restart", resumed is not None and resumed < 5)
    run.check("answers name live edges", bool(answer) and set(answer) <= set(run.topo.edges))
    run.check("0 data-plane errors", stats.errors == 0)
