"""Mid-tier failures: killed, stopped, connections reset (keys move in rendezvous order)."""

from __future__ import annotations

import asyncio
import time

from control_plane.chaos.faultproxy import Fault
from control_plane.chaos.load import tier_names
from control_plane.chaos.scenarios.base import (
    Run,
    load_with,
    proxy_stats,
    scenario,
)
from control_plane.chaos.topology import (
    EDGE_TIMEOUT,
    MAX_AGE,
    MID_TIMEOUT,
    RETRY_AFTER,
)


def _owned_by(run: Run, paths: list[str], mid: str) -> list[str]:
    return [p for p in paths if run.topo.owner(p)[0] == mid]


async def _served_by(run: Run, paths: list[str], mid: str) -> tuple[int, list[str]]:
    edges = run.topo.edges
    results = await asyncio.gather(
        *(run.get(edges[i % len(edges)], p) for i, p in enumerate(paths))
    )
    good = [
        p
        for p, (status, h, _) in zip(paths, results, strict=True)
        if status == 200 and mid in tier_names(h.get("cache-status", ""))
    ]
    bad = [
        f"{p}: {s} {h.get('cache-status')}"
        for p, (s, h, _) in zip(paths, results, strict=True)
        if p not in good
    ]
    return len(good), bad


@scenario(
    "mid-killed",
    "mid node SIGKILLed: edges move its keys to the next node in rendezvous order with 0 "
    "errors, and back when it returns",
)
async def mid_killed(run: Run) -> None:
    victim, other = "mid1", "mid2"
    paths = run.files(20)
    await run.warm(paths)
    cold_down = _owned_by(run, run.files(24, "down"), victim)[:6]
    cold_back = _owned_by(run, run.files(24, "back"), victim)[:6]
    run.numbers["warm_keys_on_victim"] = len(_owned_by(run, paths, victim))
    stats = await load_with(
        run, paths, lambda: run.stack.kill(victim), max_seconds=2 * MAX_AGE, max_requests=600
    )
    run.record("", stats)
    run.check(f"0 client errors with {victim} dead", stats.errors == 0)
    moved, bad = await _served_by(run, cold_down, other)
    run.numbers["keys_moved"] = f"{moved}/{len(cold_down)}"
    run.check(f"{victim}'s keys answered by {other}", moved == len(cold_down), "; ".join(bad[:2]))
    run.stack.restart(victim)
    await run.stack.wait_healthy(victim)
    t0 = time.monotonic()
    await asyncio.sleep(RETRY_AFTER + 0.2)
    back, bad = await _served_by(run, cold_back, victim)
    run.numbers["keys_moved_back"] = f"{back}/{len(cold_back)}"
    run.numbers["move_back_s"] = round(time.monotonic() - t0, 2)
    run.check(f"keys move back to {victim}", back == len(cold_back), "; ".join(bad[:2]))


@scenario(
    "mid-stopped",
    "mid node SIGSTOPped then SIGCONTed: edges time out on it and move on, 0 errors",
)
async def mid_stopped(run: Run) -> None:
    paths = run.files(20)
    await run.warm(paths)
    try:
        stats = await load_with(
            run,
            paths,
            lambda: run.stack.stop("mid1"),
            max_seconds=2 * MAX_AGE,
            max_requests=600,
            concurrency=20,
        )
    finally:
        run.stack.cont("mid1")
    after = await run.load(paths, max_seconds=1.0, max_requests=200)
    run.record("", stats)
    run.numbers["after_cont_errors"] = after.errors
    run.check("0 client errors while mid1 is stopped", stats.errors == 0)
    run.check("0 client errors after SIGCONT", after.errors == 0)
    run.check(
        "slowest answer bounded by the edge's upstream timeout",
        (stats.as_dict()["max_ms"] or 0) < (EDGE_TIMEOUT + MID_TIMEOUT + 1) * 1000,
        f"max {stats.as_dict()['max_ms']} ms",
    )


@scenario(
    "mid-link-reset",
    "every connection from the edges to mid1 reset (fault proxy): edges use mid2, 0 errors",
)
async def mid_link_reset(run: Run) -> None:
    paths = run.files(20)
    await run.warm(paths)
    stats = await load_with(
        run,
        paths,
        lambda: run.stack.fault("edge-mid1", Fault("reset")),
        max_seconds=2 * MAX_AGE,
        max_requests=600,
    )
    resets = proxy_stats(run, "edge-mid1")["resets"]
    run.record("", stats)
    run.numbers["resets"] = resets
    run.check("connections were reset", resets > 0)
    run.check("0 client errors while edge->mid1 resets", stats.errors == 0)
