"""The control plane killed during a purge, and no credential in any log or status."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from control_plane.chaos.load import tier_names
from control_plane.chaos.scenarios.base import (
    Run,
    scenario,
)
from control_plane.chaos.topology import (
    SITE,
)


@scenario(
    "control-killed-during-purge",
    "control plane SIGKILLed mid-purge (one edge stopped): data plane serves on; after a "
    "restart the purge completes (persisted acks + retry loop) and nothing serves the "
    "purged object from cache",
)
async def control_killed(run: Run) -> None:
    target = run.files(1, "pinned-purge")[0]
    others = run.files(10)
    await run.warm([target, *others])
    before = (await run.origin_counts()).get(target, 0)
    slow = "edge3"
    run.stack.stop(slow)
    t_post = time.monotonic()
    status, body = await run.api(
        "POST", "/v1/purges", {"type": "url", "value": f"http://{SITE}{target}", "wait": False}
    )
    if not run.check("purge accepted", status in (201, 202), f"HTTP {status}: {body}"):
        return
    purge_id = body["id"]
    await asyncio.sleep(0.4)
    _, mid = await run.api("GET", f"/v1/purges/{purge_id}")
    acked = sorted(n for n, a in (mid or {}).get("nodes", {}).items() if a.get("state") == "acked")
    run.numbers["acked_before_kill"] = acked
    run.stack.kill("control")
    live = [e for e in run.topo.edges if run.topo.edge_names[e] != slow]
    stats = await run.load(others, edges=live, max_seconds=1.5, max_requests=300)
    run.record("", stats)
    run.check("0 data-plane errors while the control plane is dead", stats.errors == 0)
    run.stack.cont(slow)
    run.stack.restart("control")
    await run.stack.wait_healthy("control")
    t0 = time.monotonic()
    state, purge = "unknown", None
    while time.monotonic() - t0 < 15:
        code, purge = await run.api("GET", f"/v1/purges/{purge_id}")
        state = purge.get("state", "unknown") if code == 200 and purge else f"HTTP {code}"
        if state == "complete":
            break
        await asyncio.sleep(0.2)
    done = time.monotonic()
    run.numbers["purge_state"] = state
    run.numbers["purge_complete_after_restart_s"] = round(done - t0, 2)
    run.numbers["purge_total_s"] = round(done - t_post, 2)
    run.check("purge completes after the restart", state == "complete", str(purge)[:300])
    served = []
    for edge in run.topo.edges:
        _, h, _ = await run.get(edge, target)
        last = (tier_names(h.get("cache-status", "")) or [""])[-1]
        entries = h.get("cache-status", "").split(",")
        if "hit" in [p.strip() for p in entries[-1].split(";")[1:]]:
            served.append(f"{last}: {h.get('cache-status')}")
    fetched = (await run.origin_counts()).get(target, 0) - before
    run.numbers["origin_refetches"] = fetched
    run.check("no edge serves the purged object from cache", not served, "; ".join(served))
    run.check("the purged object was fetched again from the origin", fetched >= 1)
    leaks = await _secret_leaks(run)
    run.check(SECRETS, not leaks, "; ".join(leaks))


SECRETS = "no credential in any log or admin /status"


async def _secret_leaks(run: Run) -> list[str]:
    """Where the stack's secrets (admin key, reader key, node token) show: service logs
    and the unauthenticated admin ``/status`` bodies."""
    workdir = run.topo.workdir
    secrets = {
        f: (workdir / f).read_text(encoding="utf-8").strip()
        for f in ("admin.key", "reader.key", "node.token")
        if (workdir / f).exists()
    }
    texts = {
        f"logs/{log.name}": log.read_text(errors="replace")
        for log in sorted((workdir / "logs").glob("*.log"))
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
        for p in run.topo.procs.values():
            if p.tier == "control_plane":
                continue
            try:
                async with s.get(f"{p.admin_url}/status") as r:
                    texts[f"{p.name} /status"] = await r.text()
            except (aiohttp.ClientError, OSError, TimeoutError):
                continue
    return [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for where, text in texts.items()
        if secret and secret in text
    ]


@scenario(
    "control-replica-killed",
    "the leading control-plane replica SIGKILLed during a burst of purges sent to both: "
    "another replica leads within 5 s, every accepted purge completes once, the data "
    "plane serves on, and the killed replica rejoins after a restart",
)
async def control_replica_killed(run: Run) -> None:
    urls = {p.admin_url: p.name for p in run.topo.procs.values() if p.tier == "control_plane"}
    views = {u: (await run.api("GET", "/v1/cluster", base=u))[1] for u in urls}
    leader = next((u for u, v in views.items() if v and v["self"]["leader"]), None)
    if not run.check("one replica leads", leader is not None, str(views)[:300]):
        return
    assert leader is not None
    old = views[leader]["self"]["id"]
    other = next(u for u in urls if u != leader)
    others = run.files(10)
    await run.warm(others)

    async def purge(i: int) -> tuple[int, Any]:
        # Clients move to the next replica when one is unreachable, as cdnctl does.
        order = (leader, other) if i % 2 else (other, leader)
        status, body = 0, None
        for base in order:
            status, body = await run.api("POST", "/v1/purges",
                                         {"type": "tag", "value": f"replica-{i}", "wait": False},
                                         base=base)
            if status != 0:
                break
        return status, body

    burst = [asyncio.ensure_future(purge(i)) for i in range(100)]
    await asyncio.sleep(0.2)
    run.stack.kill(urls[leader])
    killed = time.monotonic()
    stats_task = asyncio.ensure_future(
        run.load(others, max_seconds=2.0, max_requests=300))
    moved = None
    while time.monotonic() - killed < 10:
        status, view = await run.api("GET", "/v1/cluster", base=other)
        if status == 200 and view["leader"] not in (None, old):
            moved = time.monotonic() - killed
            break
        await asyncio.sleep(0.1)
    results = await asyncio.gather(*burst)
    stats = await stats_task
    run.record("", stats)
    run.numbers["leader_moved_after_s"] = None if moved is None else round(moved, 2)
    run.check("another replica leads within 5 s", moved is not None and moved < 5.0,
              f"moved after {moved}")
    accepted = {body["id"] for status, body in results if status in (201, 202) and body}
    run.numbers["purges_accepted"] = len(accepted)
    run.check("every purge of the burst accepted by some replica", len(accepted) == 100,
              str([r for r in results if r[0] not in (201, 202)][:3]))
    t0 = time.monotonic()
    pending: set[str] = set(accepted)
    seqs: list[int] = []
    while pending and time.monotonic() - t0 < 20:
        _, listed = await run.api("GET", "/v1/purges?limit=500", base=other)
        mine = [p for p in (listed or {}).get("purges", []) if p["id"] in accepted]
        pending = {p["id"] for p in mine if p["state"] != "complete"} | (
            accepted - {p["id"] for p in mine})
        seqs = [p["seq"] for p in mine]
        if pending:
            await asyncio.sleep(0.3)
    run.numbers["purges_complete_after_s"] = round(time.monotonic() - t0, 2)
    run.check("every accepted purge completes", not pending, f"{len(pending)} pending")
    run.check("each purge has its own seq", len(set(seqs)) == len(seqs) == len(accepted))
    run.check("0 data-plane errors while a replica is dead", stats.errors == 0)
    run.stack.restart(urls[leader])
    await run.stack.wait_healthy(urls[leader])
    t0 = time.monotonic()
    alive = 0
    while time.monotonic() - t0 < 10:
        _, view = await run.api("GET", "/v1/cluster", base=other)
        alive = sum(1 for r in (view or {}).get("replicas", []) if r["alive"])
        if alive == 2:
            break
        await asyncio.sleep(0.2)
    run.check("the restarted replica rejoins", alive == 2, f"{alive} alive")
