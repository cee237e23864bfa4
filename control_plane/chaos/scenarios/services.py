"""A node partitioned (SIGSTOP) while a new version of a service is activated (issue 20):
once it resumes it runs the new version and serves nothing of the old one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from control_plane.chaos.scenarios.base import Run, scenario
from control_plane.chaos.topology import SITE

SERVICE = "chaos-site"
WAIT = 10.0  # seconds an activation may take to reach every running node


async def _activate(run: Run, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, made = await run.api("POST", f"/v1/services/{SERVICE}/versions",
                                 {"document": document})
    if status not in (200, 201):
        return status, made
    return await run.api("POST", f"/v1/services/{SERVICE}/activate",
                         {"version": made["version"]})


async def _complete(run: Run, seconds: float = WAIT) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    progress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, svc = await run.api("GET", f"/v1/services/{SERVICE}")
        progress = (svc or {}).get("progress") or {}
        if progress.get("state") == "complete":
            break
        await asyncio.sleep(0.2)
    return progress


@scenario(
    "edge-stopped-during-activation",
    "an edge SIGSTOPped while a service's version 2 is activated: activation waits for "
    "it; after SIGCONT its first answers are version 2's, none of version 1's",
)
async def stopped_during_activation(run: Run) -> None:
    (path,) = run.files(1)
    listen, _ = run.topo.proxies["mid-origin"]
    base = {"name": SERVICE, "domains": [SITE],
            "origins": {"servers": [{"url": f"http://{listen[0]}:{listen[1]}"}]},
            "response_rules": [{"set_headers": {"X-Site-Version": "1"}}]}
    status, body = await _activate(run, base)
    if not run.check("version 1 activated", status == 200, f"HTTP {status}: {body}"):
        return
    try:
        progress = await _complete(run)
        run.check("version 1 runs on every node", progress.get("state") == "complete",
                  str(progress))
        victim_host = run.topo.edges[0]
        victim = run.topo.edge_names[victim_host]
        await run.warm([path], edges=[victim_host])
        run.stack.stop(victim)
        v2 = {**base, "response_rules": [{"set_headers": {"X-Site-Version": "2"}}]}
        status, body = await _activate(run, v2)
        run.check("version 2 activated", status == 200, f"HTTP {status}: {body}")
        await asyncio.sleep(0.6)
        _, svc = await run.api("GET", f"/v1/services/{SERVICE}")
        pending = (svc or {}).get("progress", {}).get("pending_nodes", [])
        run.check("activation waits for the stopped edge", victim in pending, str(pending))
        await asyncio.sleep(2.0)  # past the node's confirmation window (3 heartbeats)
        run.stack.cont(victim)
        t0 = time.monotonic()
        seen = []
        for _ in range(20):
            _, h, _ = await run.get(victim_host, path)
            seen.append(h.get("x-site-version"))
        run.numbers["first_answers"] = len(seen)
        run.numbers["old_version_answers"] = seen.count("1")
        run.numbers["answer_window_s"] = round(time.monotonic() - t0, 2)
        run.check("no answer of version 1 after the edge resumed", "1" not in seen,
                  str(seen))
        run.check("every answer is version 2's", seen == ["2"] * len(seen), str(seen))
        progress = await _complete(run)
        run.check("version 2 then runs on every node", progress.get("state") == "complete",
                  str(progress))
    finally:
        run.stack.cont(run.topo.edge_names[run.topo.edges[0]])
        await run.api("DELETE", f"/v1/services/{SERVICE}")
        await asyncio.sleep(1.5)  # the nodes return to one implicit site (next heartbeat)
