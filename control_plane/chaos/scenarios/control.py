"""The control plane killed during a purge, and no credential in any log or status."""

from __future__ import annotations

import asyncio
import time

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
