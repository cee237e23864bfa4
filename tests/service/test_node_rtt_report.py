"""Edges measure client RTT from the kernel (TCP_INFO) on real connections and report
per-prefix averages to the DNS router (issue 7)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from nodeharness import Route


async def test_edge_reports_client_prefix_rtt_to_the_router(origin, make_node, http):
    posts: list[dict] = []

    async def rtt(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.json_response({"accepted": 1, "rejected": 0})

    app = web.Application()
    app.router.add_post("/v1/rtt", rtt)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    router_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        origin.routes["/a"] = Route(headers={"Cache-Control": "max-age=60"})
        edge = await make_node([origin.url],
                               rtt_report={"url": router_url, "interval": 0.05})
        await http(edge, "/a")
        for _ in range(100):  # bounded wait for the next report
            if posts:
                break
            await asyncio.sleep(0.02)
        assert posts and posts[0]["edge"] == "edge1"
        sample = posts[0]["samples"][0]
        assert sample["prefix"] == "127.0.0.0/24" and 0 <= sample["rtt_ms"] < 1000
    finally:
        await runner.cleanup()
