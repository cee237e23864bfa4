"""Real caching nodes (in-process) with the control plane: node-token auth, prewarm,
heartbeats, purge catch-up by seq, the failover override and policy pull (issue 8)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from nodeharness import Route

from cdn_core.metrics import new_registry
from cdn_core.node.app import Node
from cdn_core.node.settings.node import NodeConfig
from cdn_core.store import MemoryStore
from control_plane.app import create_app
from control_plane.config import ControlPlaneConfig, PurgeConfig
from control_plane.testing import ADMIN, NODE_TOKEN, auth_config

CC60 = {"Cache-Control": "max-age=60"}
SITE = "http://www.example.test"


@pytest.fixture
async def cp(aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = ControlPlaneConfig(
        db=str(tmp_path / "control.db"),
        purge=PurgeConfig(node_timeout=0.5, retry_interval=3600),
        auth=auth_config(tmp_path),
    )
    server = await aiohttp_server(create_app(config, registry=new_registry()))
    return await aiohttp_client(server, headers=ADMIN)


def control(cp: TestClient, **extra: Any) -> dict[str, Any]:
    url = str(cp.make_url("")).rstrip("/")
    return {"url": url, "token": NODE_TOKEN, "interval": 3600, "timeout": 2, **extra}


async def synced(node: Node) -> Node:
    async with asyncio.timeout(5):
        while node.sync.ok is not True:
            await asyncio.sleep(0.01)
    return node


async def test_admin_endpoints_need_the_node_token(origin, make_node, http) -> None:
    edge = await make_node([origin.url], control={"token": "secret"})
    for path in ("/purge", "/prewarm"):
        status, headers, _ = await http(edge.admin_port, path, method="POST")
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
        status, _, _ = await http(edge.admin_port, path, method="POST", Authorization="Bearer x")
        assert status == 401
    bare = await make_node([origin.url], name="edge2")
    status, _, body = await http(bare.admin_port, "/prewarm", method="POST")
    assert status == 403 and b"no control token" in body


async def test_node_prewarm_endpoint(origin, make_node, http) -> None:
    origin.routes["/p"] = Route(headers=CC60, body=b"warm")
    edge = await make_node([origin.url], control={"token": "secret"})
    auth = {"Authorization": "Bearer secret"}
    async with aiohttp.ClientSession(headers=auth) as s:
        url = f"http://127.0.0.1:{edge.admin_port}/prewarm"
        async with s.post(url, json={"urls": [f"{SITE}/p", "/relative"]}) as r:
            assert r.status == 200
            results = (await r.json())["results"]
        async with s.post(url, json={"urls": "x"}) as r:
            assert r.status == 400 and "urls" in (await r.json())["error"]
    assert "stored" in results[f"{SITE}/p"] and results["/relative"].startswith("error:")
    _, h, body = await http(edge, "/p")
    assert body == b"warm" and "hit" in h["Cache-Status"] and origin.hits["/p"] == 1


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"type": "all", "seq": ' + b"9" * 5000 + b"}",
                                  b"\xff\xfe", b"{"])
async def test_a_body_json_cannot_parse_is_400_json(body, make_node, origin) -> None:
    edge = await make_node([origin.url], control={"token": "secret"})
    auth = {"Authorization": "Bearer secret", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=auth) as s:
        for path in ("/purge", "/prewarm"):
            async with s.post(f"http://127.0.0.1:{edge.admin_port}{path}", data=body) as r:
                assert r.status == 400 and (await r.json())["error"] == "body must be JSON"

        # A seq that is not an integer is not one (1e999 would come back as Infinity).
        async with s.post(f"http://127.0.0.1:{edge.admin_port}/purge",
                          data=b'{"type": "all", "seq": 1e999}') as r:
            assert r.status == 200 and (await r.json())["seq"] is None


async def test_prewarm_through_the_control_plane(cp, origin, make_node, http) -> None:
    origin.routes["/w"] = Route(headers=CC60, body=b"pushed")
    mid = await synced(await make_node([origin.url], tier="mid", name="mid1", control=control(cp)))
    edge = await synced(
        await make_node([f"http://127.0.0.1:{mid.port}"], name="edge1", control=control(cp))
    )
    resp = await cp.post("/v1/prewarm", json={"urls": [f"{SITE}/w"]})
    data = await resp.json()
    assert resp.status == 200 and data["ok"] is True, data
    assert list(data["nodes"]) == ["mid1", "edge1"]
    assert all(n["stored"] == 1 for n in data["nodes"].values())
    assert origin.hits["/w"] == 1
    _, h, body = await http(edge, "/w")
    assert body == b"pushed" and "edge1; hit" in h["Cache-Status"]


async def test_heartbeat_registers_and_pushed_purges_advance_the_seq(cp, origin, make_node) -> None:
    edge = await synced(await make_node([origin.url], control=control(cp)))
    node = await (await cp.get("/v1/nodes/edge1")).json()
    assert node["admin_url"] == f"http://127.0.0.1:{edge.admin_port}" and node["alive"] is True
    for _ in range(2):
        purge = await (await cp.post("/v1/purges", json={"type": "all"})).json()
        assert purge["state"] == "complete"
    assert edge.sync.watermark == purge["seq"] and edge.sync.caught_up == 0
    await edge.sync.beat()
    assert (await (await cp.get("/v1/nodes/edge1")).json())["purge_seq"] == purge["seq"]


async def test_node_removed_while_away_catches_up(cp, origin, make_node, http) -> None:
    """A purge completes without a node that left the registry; when the node comes
    back (its next heartbeat) it applies the purge before anything else."""
    origin.routes["/c"] = Route(headers=CC60, body=b"old")
    edge = await synced(await make_node([origin.url], control=control(cp)))
    await http(edge, "/c")
    assert (await cp.delete("/v1/nodes/edge1")).status == 204
    purge = await (await cp.post("/v1/purges", json={"type": "url", "value": f"{SITE}/c"})).json()
    assert purge["state"] == "complete" and purge["nodes"] == {}
    _, h, _ = await http(edge, "/c")
    assert "hit" in h["Cache-Status"]  # it has not heard of the purge yet
    assert await edge.sync.beat() is True
    assert edge.sync.caught_up == 1 and edge.sync.watermark == purge["seq"]
    origin.routes["/c"] = Route(headers=CC60, body=b"new")
    _, h, body = await http(edge, "/c")
    assert body == b"new" and "fwd=uri-miss" in h["Cache-Status"]


def node_config(cp: TestClient, origin: Any, state: Path, **control_extra: Any) -> NodeConfig:
    return NodeConfig.model_validate(
        {
            "tier": "edge",
            "name": "edge1",
            "port": 0,
            "admin_port": 0,
            "upstream": {"urls": [origin.url], "timeout": 5, "retry_after": 1},
            "control": control(cp, state_file=str(state), **control_extra),
        }
    )


async def test_restart_with_content_catches_up_before_serving(
    cp, origin, http, clock, tmp_path: Path
) -> None:
    origin.routes["/r"] = Route(headers=CC60, body=b"old")
    store = MemoryStore(max_bytes=1 << 20, max_object_bytes=1 << 16, max_variants=4)
    state = tmp_path / "edge1.seq"
    first = Node(node_config(cp, origin, state), store=store, clock=clock)
    await first.start()
    try:
        await synced(first)
        await http(first, "/r")
    finally:
        await first.stop()
    assert state.read_text().strip() == "0"
    resp = await cp.post("/v1/purges", json={"type": "url", "value": f"{SITE}/r"})
    assert (await resp.json())["state"] == "partial"  # the node is down
    origin.routes["/r"] = Route(headers=CC60, body=b"new")
    second = Node(node_config(cp, origin, state), store=store, clock=clock)
    await second.start()  # the store still holds /r: catch up before serving
    try:
        assert second.sync.caught_up == 1
        _, h, body = await http(second, "/r")
        assert body == b"new" and "fwd=uri-miss" in h["Cache-Status"]
    finally:
        await second.stop()


async def test_content_without_a_reachable_control_plane_is_revalidated(
    cp, origin, http, clock, tmp_path: Path, unused_tcp_port: int
) -> None:
    origin.routes["/s"] = Route(headers=CC60, body=b"v1")
    store = MemoryStore(max_bytes=1 << 20, max_object_bytes=1 << 16, max_variants=4)
    state = tmp_path / "edge1.seq"
    first = Node(node_config(cp, origin, state), store=store, clock=clock)
    await first.start()
    try:
        await synced(first)
        await http(first, "/s")
    finally:
        await first.stop()
    cfg = node_config(cp, origin, state, startup_sync_timeout=0.5)
    dead = cfg.model_copy(
        update={
            "control": cfg.control.model_copy(update={"url": f"http://127.0.0.1:{unused_tcp_port}"})
        }
    )
    second = Node(dead, store=store, clock=clock)
    await second.start()
    try:
        _, h, _ = await http(second, "/s")
        assert "fwd=stale" in h["Cache-Status"] and origin.hits["/s"] == 2
    finally:
        await second.stop()


async def test_forced_failover_serves_stale_from_the_mid_tier(
    cp, origin, make_node, http, clock
) -> None:
    origin.routes["/f"] = Route(headers={"Cache-Control": "max-age=1"}, body=b"cached")
    origin.routes["/mr"] = Route(headers={"Cache-Control": "max-age=1, must-revalidate"})
    mid = await synced(await make_node([origin.url], tier="mid", name="mid1", control=control(cp)))
    await http(mid, "/f")
    await http(mid, "/mr")
    clock.advance(30)
    resp = await cp.put("/v1/origins/failover", json={"forced": True, "reason": "test"})
    assert resp.status == 200
    await mid.sync.beat()
    assert mid.failover is not None and mid.failover.forced is True
    _, h, body = await http(mid, "/f")
    assert body == b"cached" and "detail=failover" in h["Cache-Status"]
    assert origin.hits["/f"] == 1
    await http(mid, "/mr")  # must-revalidate: never served stale, even when forced
    assert origin.hits["/mr"] == 2
    await cp.put("/v1/origins/failover", json={"forced": False})
    await mid.sync.beat()
    await http(mid, "/f")
    assert origin.hits["/f"] == 2
    status = await (await cp.get("/v1/origins")).json()
    assert status["upstreams"][0]["seen_by"]["mid1"]["up"] is True


async def test_edges_pull_rate_limit_policies(cp, origin, make_node, http) -> None:
    origin.routes["/x"] = Route(headers=CC60)
    edge = await synced(await make_node([origin.url], control=control(cp)))
    assert edge.ratelimiter is not None and edge.ratelimiter.policies == []
    policy = {"name": "tight", "limit": 1, "window": 60}
    assert (await cp.post("/v1/ratelimits", json=policy)).status == 201
    await edge.sync.beat()
    assert [p.name for p in edge.ratelimiter.policies] == ["tight"]
    assert [(await http(edge, "/x"))[0] for _ in range(2)] == [200, 429]


async def test_signed_url_keys_rotate_through_the_control_plane(cp, origin, make_node,
                                                                http, clock) -> None:
    from cdn_core.node.policy.signed import sign_url

    origin.routes["/private/doc"] = Route(headers=CC60, body=b"members")
    edge = await synced(await make_node(
        [origin.url], control=control(cp), signed_urls={"path_prefixes": ["/private/"]}))
    now = int(clock.time())
    old = sign_url("/private/doc", kid="k1", secret="first-secret-0123456", expires=now + 60)
    new = sign_url("/private/doc", kid="k2", secret="second-secret-012345", expires=now + 60)
    assert (await http(edge, old))[0] == 403  # no key distributed yet
    r = await cp.put("/v1/signing-keys/k1", json={"secret": "first-secret-0123456"})
    assert r.status == 200
    assert await edge.sync.beat()
    assert (await http(edge, old))[0] == 200
    # Rotation: add k2, then retire k1; at no point is a valid URL refused.
    assert (await cp.put("/v1/signing-keys/k2", json={"secret": "second-secret-012345"})).status == 200
    assert await edge.sync.beat()
    assert (await http(edge, old))[0] == 200 and (await http(edge, new))[0] == 200
    assert (await cp.delete("/v1/signing-keys/k1")).status == 204
    assert await edge.sync.beat()
    assert (await http(edge, old))[0] == 403 and (await http(edge, new))[0] == 200
    assert (await cp.put("/v1/signing-keys/k3", json={"secret": "short"})).status == 400
    r = await cp.get("/v1/signing-keys", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
