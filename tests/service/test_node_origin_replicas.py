"""A mid tier in front of an origin and its replica (issue 12): list-order failover,
active health checks with rise/fall, and the replica's use reported in /status."""

from __future__ import annotations

import asyncio

from nodeharness import Route, ScriptedOrigin

NOCACHE = {"Cache-Control": "no-store"}


async def test_ordered_upstreams_fail_over_to_the_replica_and_back(clock, make_node, http):
    primary, replica = ScriptedOrigin(clock), ScriptedOrigin(clock)
    for o, body in ((primary, b"primary"), (replica, b"replica")):
        await o.start()
        o.routes["/x"] = Route(headers=NOCACHE, body=body)
        o.routes["/health"] = Route(headers=NOCACHE)
    mid = await make_node([primary.url, replica.url], tier="mid", name="mid1", upstream={
        "urls": [primary.url, replica.url], "selection": "ordered", "health_path": "/health",
        "health_interval": 0.05, "health_timeout": 0.5, "rise": 2, "fall": 2, "timeout": 5})
    assert (await http(mid, "/x"))[2] == b"primary"
    primary.routes["/health"] = Route(status=503, headers=NOCACHE)
    for _ in range(100):  # bounded: the fall threshold needs two probes
        if not mid.upstream.nodes[0].healthy:
            break
        await asyncio.sleep(0.02)
    assert (await http(mid, "/x"))[2] == b"replica"
    primary.routes["/health"] = Route(headers=NOCACHE)
    for _ in range(100):
        if mid.upstream.nodes[0].healthy:
            break
        await asyncio.sleep(0.02)
    assert (await http(mid, "/x"))[2] == b"primary"
    await primary.stop()  # refused connections: passive failover, no probe needed
    assert (await http(mid, "/x"))[2] == b"replica"
    fetches = {u["url"]: u["fetches"] for u in mid.status()["upstreams"]}
    assert fetches[replica.url] >= 2
    await replica.stop()
