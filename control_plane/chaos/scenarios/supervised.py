"""``cdnctl up``'s own supervision: children it started, SIGKILLed, come back by
themselves and catch up on what they missed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import aiohttp

from control_plane.chaos.load import Resolver, get_once, run_load
from control_plane.chaos.scenarios.base import Run, scenario
from control_plane.chaos.topology import PORT, SITE
from control_plane.chaos.upstack import UpStack, sibling_net

BACK_WITHIN = 2.0  # seconds: the first restart comes 0.5 s after the exit


async def _healthy(url: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as s,
            s.get(url) as r,
        ):
            return r.status == 200
    return False


async def _api(up: UpStack, method: str, path: str, body: object = None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {up.topo.admin_key}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
            s.request(method, f"{up.topo.api}{path}", json=body, headers=headers) as r,
        ):
            return r.status, await r.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        return 0, None


@scenario(
    "child-crashed",
    "an edge and a mid tier started by cdnctl up SIGKILLed: cdnctl up restarts both within "
    "2 s, re-resolving clients retrying once see 0 errors, a purge issued while they were "
    "down is not missed, and the restarts show in /v1/status",
)
async def child_crashed(run: Run) -> None:
    async with UpStack(run.topo.workdir / "up", sibling_net(run.topo.net)) as up:
        topo = up.topo
        site = topo.content / "supervised"
        site.mkdir(parents=True, exist_ok=True)
        target = "/supervised/pinned-crash.txt"  # fresh for 5 minutes: only a purge renews it
        (site / "pinned-crash.txt").write_text("old\n")
        paths = [f"/supervised/obj-{i}.txt" for i in range(10)]
        for p in paths:
            (topo.content / p.lstrip("/")).write_text(f"object {p}\n" * 8)
        for edge in topo.edges:
            for p in [target, *paths]:
                await get_once(edge, PORT, SITE, p)
        victims = ["edge1", "mid1"]
        before = up.children()
        run.numbers["victims"] = victims
        clients = Resolver(topo.router, SITE, timeout=0.5)
        stop = asyncio.Event()
        load = asyncio.create_task(
            run_load(paths=paths, host=SITE, port=PORT, resolver=clients, max_seconds=8,
                     max_requests=800, rate=80, stop=stop)
        )
        try:
            await asyncio.sleep(0.5)
            for name in victims:
                os.kill(before[name]["pid"], signal.SIGKILL)
            t0 = time.monotonic()
            (site / "pinned-crash.txt").write_text("new\n")
            status, purge = await _api(
                up, "POST", "/v1/purges",
                {"type": "url", "value": f"http://{SITE}{target}", "wait": False},
            )
            run.check("purge accepted while they were down", status in (201, 202),
                      f"HTTP {status}")
            back: dict[str, float] = {}
            while time.monotonic() - t0 < 10 and len(back) < len(victims):
                for name in victims:
                    if name not in back and await _healthy(topo.procs[name].health_url):
                        back[name] = round(time.monotonic() - t0, 2)
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # clients keep going on the restarted nodes
        finally:
            stop.set()
            stats = await load
        run.record("", stats)
        run.numbers["back_s"] = back
        run.check(f"both back within {BACK_WITHIN} s",
                  len(back) == 2 and max(back.values()) < BACK_WITHIN, str(back))
        run.check("0 errors for re-resolving clients", stats.errors == 0)
        # The purge completes once the restarted nodes caught up, and no tier serves the
        # old object.
        state = "unknown"
        t1 = time.monotonic()
        while isinstance(purge, dict) and time.monotonic() - t1 < 10:
            _, got = await _api(up, "GET", f"/v1/purges/{purge['id']}")
            state = got.get("state", "unknown") if isinstance(got, dict) else "unknown"
            if state == "complete":
                break
            await asyncio.sleep(0.2)
        run.numbers["purge_state"] = state
        run.check("the purge issued meanwhile completed", state == "complete")
        bodies = [(await get_once(e, PORT, SITE, target))[2] for e in topo.edges]
        run.check("no edge serves the purged object", all(b == b"new\n" for b in bodies),
                  str(bodies))
        after = up.children()
        run.numbers["restarts"] = {n: after[n]["restarts"] for n in victims}
        _, status_body = await _api(up, "GET", "/v1/status")
        shown = {
            n["name"]: (n.get("status") or {}).get("restarts")
            for n in (status_body or {}).get("nodes", [])  # type: ignore[union-attr]
        }
        run.check("restarts counted and shown in /v1/status",
                  all(after[n]["restarts"] == 1 and shown.get(n) == 1 for n in victims),
                  str(shown))
        run.check("cdnctl up said so", all(f"{n} exited" in up.output() for n in victims))
