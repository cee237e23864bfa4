"""Service tests of the control plane API against fake nodes on loopback (port 0)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from cdn_core.metrics import new_registry
from control_plane.app import create_app
from control_plane.config import ControlPlaneConfig, PurgeConfig
from control_plane.store import Store
from control_plane.testing import ADMIN, FakeNode, auth_config

URL = "http://www.example.test/index.html"

MakeNode = Callable[..., Awaitable[FakeNode]]


@pytest.fixture
def config(tmp_path: Any, cp_db: str) -> ControlPlaneConfig:
    return ControlPlaneConfig(
        db=cp_db,
        status_timeout=0.5,
        purge=PurgeConfig(node_timeout=0.5, retry_interval=0.05),
        auth=auth_config(tmp_path),
    )


@pytest.fixture
def events() -> list[tuple[str, str]]:
    return []


@pytest.fixture
async def cp(aiohttp_client: Any, config: ControlPlaneConfig) -> TestClient:
    return await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)


@pytest.fixture
def make_node(aiohttp_server: Any, events: list[tuple[str, str]]) -> MakeNode:
    async def make(name: str, tier: str, **kw: Any) -> FakeNode:
        node = FakeNode(name, tier, events=events, **kw)
        server = await aiohttp_server(node.app())
        node.admin_url = str(server.make_url("")).rstrip("/")
        return node

    return make


async def register(cp: TestClient, node: FakeNode) -> None:
    body = {"tier": node.tier, "host": "127.0.0.1", "port": 8080, "admin_url": node.admin_url}
    resp = await cp.put(f"/v1/nodes/{node.name}", json=body)
    assert resp.status == 200, await resp.text()


async def purge(cp: TestClient, status: int = 201, **body: Any) -> dict[str, Any]:
    resp = await cp.post("/v1/purges", json={"type": "url", "value": URL, **body})
    data = await resp.json()
    assert resp.status == status, data
    return data


async def fetch(cp: TestClient, purge_id: str) -> dict[str, Any]:
    resp = await cp.get(f"/v1/purges/{purge_id}")
    assert resp.status == 200
    return await resp.json()


async def wait_complete(cp: TestClient, purge_id: str, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            data = await fetch(cp, purge_id)
            if data["state"] == "complete":
                return data
            await asyncio.sleep(0.02)


async def metrics(cp: TestClient) -> str:
    return await (await cp.get("/metrics")).text()


async def test_healthz_and_metrics(cp: TestClient) -> None:
    resp = await cp.get("/v1/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    await purge(cp)  # no nodes: complete at once
    text = await (await cp.get("/metrics")).text()
    assert 'cdn_purges_total{state="complete"} 1.0' in text
    assert "cdn_purge_latency_seconds_count 1.0" in text
    assert 'cdn_api_requests_total{route="/v1/healthz",status_class="2xx"} 1.0' in text


async def test_node_registry_crud(cp: TestClient) -> None:
    body = {
        "tier": "edge",
        "host": "127.0.1.1",
        "port": 8080,
        "admin_url": "http://127.0.1.1:9080/",
    }
    resp = await cp.put("/v1/nodes/edge1", json=body)
    node = await resp.json()
    assert resp.status == 200
    assert node["admin_url"] == "http://127.0.1.1:9080" and node["registered_at"].endswith("Z")
    await cp.put("/v1/nodes/mid1", json={**body, "tier": "mid", "host": "127.0.0.1"})
    names = [n["name"] for n in (await (await cp.get("/v1/nodes")).json())["nodes"]]
    assert names == ["edge1", "mid1"]
    edges = (await (await cp.get("/v1/nodes?tier=edge")).json())["nodes"]
    assert [n["name"] for n in edges] == ["edge1"]
    assert (await (await cp.get("/v1/nodes/mid1")).json())["tier"] == "mid"
    assert (await cp.delete("/v1/nodes/mid1")).status == 204
    resp = await cp.get("/v1/nodes/mid1")
    assert resp.status == 404 and "mid1" in (await resp.json())["error"]
    assert (await cp.delete("/v1/nodes/mid1")).status == 404


NODE = {"tier": "edge", "host": "h", "port": 1, "admin_url": "http://h"}


@pytest.mark.parametrize(
    ("name", "change", "needle"),
    [
        ("e1", {"x": 1}, "'x'"),
        ("e1", {"host": None, "hots": "h"}, "unknown field 'hots'"),
        ("e1", {"tier": "cdn"}, "tier"),
        ("e1", {"port": "80"}, "port"),
        ("e1", {"port": 0}, "port"),
        ("e1", {"admin_url": None}, "admin_url"),
        ("e1", {"admin_url": "ftp://h"}, "admin_url"),
        ("e1", {"host": "a b"}, "host"),
        ("-bad", {}, "name"),
    ],
)
async def test_bad_node_bodies_are_400(
    cp: TestClient, name: str, change: dict[str, Any], needle: str
) -> None:
    body = {k: v for k, v in {**NODE, **change}.items() if v is not None}
    resp = await cp.put(f"/v1/nodes/{name}", json=body)
    assert resp.status == 400
    assert needle in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"type": "url", "value": URL, "extra": 1}, "'extra'"),
        ({"typ": "url", "value": URL}, "unknown field 'typ'"),
        ({"type": "page", "value": URL}, "type"),
        ({"type": "url", "value": "/index.html"}, "value"),
        ({"type": "url"}, "value"),
        ({"type": "prefix", "value": "www.example.test/"}, "value"),
        ({"type": "host", "value": "http://www.example.test"}, "value"),
        ({"type": "tag", "value": "a b"}, "value"),
        ({"type": "all", "value": "x"}, "value"),
        ({"type": "url", "value": URL, "soft": "yes"}, "soft"),
        ({"value": URL}, "type"),
        ([1, 2], "object"),
    ],
)
async def test_bad_purge_bodies_are_400(cp: TestClient, body: Any, needle: str) -> None:
    resp = await cp.post("/v1/purges", json=body)
    assert resp.status == 400
    assert needle in (await resp.json())["error"]


async def test_malformed_requests_answer_json_errors(cp: TestClient) -> None:
    resp = await cp.post("/v1/purges", data=b"{not json")
    assert resp.status == 400 and "JSON" in (await resp.json())["error"]
    for path in ("/v1/purges/5b0c3c5e-0000-4000-8000-000000000000", "/v1/purges/nope"):
        resp = await cp.get(path)
        assert resp.status == 404 and "no purge" in (await resp.json())["error"]
    resp = await cp.get("/v1/purges?limit=abc")
    assert resp.status == 400 and "limit" in (await resp.json())["error"]
    resp = await cp.get("/v1/nodes?tier=cdn")
    assert resp.status == 400
    resp = await cp.get("/v1/nothing")
    assert resp.status == 404 and "error" in await resp.json()
    resp = await cp.delete("/v1/purges")
    assert resp.status == 405 and "error" in await resp.json()


async def test_fan_out_purges_mid_tier_before_edges(
    cp: TestClient, make_node: MakeNode, events: list[tuple[str, str]]
) -> None:
    nodes = [
        await make_node("edge1", "edge"),
        await make_node("mid2", "mid", delay=0.05),
        await make_node("edge2", "edge"),
        await make_node("mid1", "mid", delay=0.02),
        await make_node("origin", "origin"),
    ]
    for node in nodes:
        await register(cp, node)
    data = await purge(cp, soft=True)
    assert data["state"] == "complete" and data["completed_at"] is not None
    assert list(data["nodes"]) == ["mid1", "mid2", "edge1", "edge2"]
    assert all(n["state"] == "acked" and n["purged"] == 1 for n in data["nodes"].values())
    last_mid_end = max(i for i, (e, n) in enumerate(events) if e == "end" and n.startswith("mid"))
    first_edge = min(i for i, (e, n) in enumerate(events) if e == "start" and n.startswith("edge"))
    assert last_mid_end < first_edge, events
    assert nodes[-1].calls == []  # the origin is not purged
    sent = nodes[0].calls[0]
    assert sent == {"id": data["id"], "seq": data["seq"], "type": "url", "value": URL, "soft": True}
    assert await (await cp.get(f"/v1/purges/{data['id']}")).json() == data


async def test_retry_pass_leaves_a_purge_whose_fan_out_began_while_it_read(
    cp: TestClient, make_node: MakeNode, events: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The retry pass lists open purges, then works through them; a purge created during
    # that read is fanned out by its own request meanwhile. The pass must not send it too.
    mid, edge = await make_node("mid1", "mid", delay=0.2), await make_node("edge1", "edge")
    await register(cp, mid)
    await register(cp, edge)
    listed_open = Store.open_purges

    async def read_before_the_fan_out_began(
        self: Store, exclude: Any = (), limit: int = 500
    ) -> Any:
        found = await listed_open(self, (), limit)  # as if read before run() began
        async with asyncio.timeout(2):
            while found and not events:  # the purge's own fan-out is under way by now
                await asyncio.sleep(0.005)
        return found

    monkeypatch.setattr(Store, "open_purges", read_before_the_fan_out_began)
    data = await purge(cp)
    assert data["state"] == "complete"
    assert [n for e, n in events if e == "start"] == ["mid1", "edge1"], events


async def test_failed_node_gives_partial_then_retry_completes(
    cp: TestClient, make_node: MakeNode
) -> None:
    mid, edge = await make_node("mid1", "mid"), await make_node("edge1", "edge", fail=True)
    await register(cp, mid)
    await register(cp, edge)
    data = await purge(cp)
    assert data["state"] == "partial" and data["completed_at"] is None
    assert data["nodes"]["edge1"]["state"] == "failed"
    assert "HTTP 500" in data["nodes"]["edge1"]["error"]
    assert data["nodes"]["mid1"]["state"] == "acked"
    edge.fail = False
    done = await wait_complete(cp, data["id"])
    assert done["completed_at"] is not None and done["nodes"]["edge1"]["error"] is None
    assert len(mid.calls) == 1 and len(edge.calls) >= 2
    # the latency is observed just after the completing ack is committed: poll for it
    async with asyncio.timeout(2):
        while "cdn_purge_latency_seconds_count 1.0" not in (text := await metrics(cp)):
            await asyncio.sleep(0.01)
    assert 'cdn_purges_total{state="partial"} 1.0' in text


async def test_late_mid_ack_purges_edges_again(cp: TestClient, make_node: MakeNode) -> None:
    mid, edge = await make_node("mid1", "mid", fail=True), await make_node("edge1", "edge")
    await register(cp, mid)
    await register(cp, edge)
    data = await purge(cp)
    assert data["state"] == "partial" and data["nodes"]["edge1"]["state"] == "acked"
    # the edge may refill from the mid tier while that still holds the object: its ack is
    # reopened, and it is purged again right after the mid acks
    async with asyncio.timeout(2):
        while (await fetch(cp, data["id"]))["nodes"]["edge1"]["state"] != "pending":
            await asyncio.sleep(0.01)
    mid.fail = False
    await wait_complete(cp, data["id"])
    assert len(edge.calls) == 2


async def test_retries_go_in_seq_order(cp: TestClient, make_node: MakeNode) -> None:
    edge = await make_node("edge1", "edge", fail=True)
    await register(cp, edge)
    first = await purge(cp)
    second = await purge(cp, value=URL + "?v=2")
    assert second["seq"] > first["seq"]
    edge.calls.clear()
    edge.fail = False
    await wait_complete(cp, second["id"])
    seqs = [c["seq"] for c in edge.calls]
    assert seqs == sorted(seqs) and {first["seq"], second["seq"]} <= set(seqs)


async def test_slow_node_times_out(cp: TestClient, make_node: MakeNode) -> None:
    await register(cp, await make_node("edge1", "edge", delay=1.5))
    data = await purge(cp)
    assert data["nodes"]["edge1"]["state"] == "failed"
    assert "no answer within 0.5 s" in data["nodes"]["edge1"]["error"]


async def test_unreachable_node_fails_with_error(cp: TestClient, unused_tcp_port: int) -> None:
    body = {
        "tier": "edge",
        "host": "127.0.0.1",
        "port": 1,
        "admin_url": f"http://127.0.0.1:{unused_tcp_port}",
    }
    await cp.put("/v1/nodes/edge1", json=body)
    data = await purge(cp)
    assert data["state"] == "partial" and data["nodes"]["edge1"]["error"]


async def test_no_wait_answers_202_and_completes(cp: TestClient, make_node: MakeNode) -> None:
    await register(cp, await make_node("edge1", "edge", delay=0.1))
    data = await purge(cp, status=202, wait=False, type="host", value="WWW.Example.test")
    assert data["state"] == "pending" and data["value"] == "www.example.test"
    assert data["nodes"]["edge1"]["state"] == "pending"
    await wait_complete(cp, data["id"])


async def test_list_purges_newest_first(cp: TestClient) -> None:
    ids = [(await purge(cp, type="tag", value=f"t{i}"))["id"] for i in range(3)]
    data = await (await cp.get("/v1/purges?limit=2")).json()
    assert [p["id"] for p in data["purges"]] == ids[::-1][:2]
    all_ = await purge(cp, type="all", value=None)
    assert all_["value"] is None and all_["state"] == "complete"


async def test_removing_a_node_settles_its_purges(cp: TestClient, make_node: MakeNode) -> None:
    await register(cp, await make_node("edge1", "edge"))
    await register(cp, await make_node("edge2", "edge", fail=True))
    data = await purge(cp)
    assert data["state"] == "partial"
    assert (await cp.delete("/v1/nodes/edge2")).status == 204
    done = await wait_complete(cp, data["id"])
    assert list(done["nodes"]) == ["edge1"]


async def test_state_survives_restart(
    aiohttp_client: Any, config: ControlPlaneConfig, make_node: MakeNode
) -> None:
    edge = await make_node("edge1", "edge")
    cp1 = await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)
    await register(cp1, edge)
    first = await purge(cp1)
    await cp1.close()

    cp2 = await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)
    nodes = (await (await cp2.get("/v1/nodes")).json())["nodes"]
    assert [n["name"] for n in nodes] == ["edge1"]
    assert await (await cp2.get(f"/v1/purges/{first['id']}")).json() == first
    second = await purge(cp2)
    assert second["seq"] > first["seq"]


async def test_purge_left_pending_by_a_crash_is_delivered_after_restart(
    aiohttp_client: Any, config: ControlPlaneConfig, make_node: MakeNode
) -> None:
    edge = await make_node("edge1", "edge")
    store = Store(config.db)
    await store.open()
    await store.upsert_node(
        "edge1", tier="edge", host="127.0.0.1", port=1, admin_url=edge.admin_url, now=1.0
    )
    crashed = await store.create_purge("url", URL, False, now=2.0)  # never fanned out
    await store.close()
    cp = await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)
    await wait_complete(cp, crashed.id)
    assert [c["id"] for c in edge.calls] == [crashed.id]


async def test_status_reports_each_node(
    cp: TestClient, make_node: MakeNode, unused_tcp_port: int
) -> None:
    counters = {"cache": {"entries": 3, "bytes": 100, "hits": 5, "misses": 2}}
    await register(cp, await make_node("edge1", "edge", status=counters))
    await register(cp, await make_node("mid1", "mid", fail=True))
    dead = {
        "tier": "origin",
        "host": "127.0.0.1",
        "port": 1,
        "admin_url": f"http://127.0.0.1:{unused_tcp_port}",
    }
    await cp.put("/v1/nodes/origin", json=dead)
    data = await (await cp.get("/v1/status")).json()
    by_name = {n["name"]: n for n in data["nodes"]}
    assert by_name["edge1"]["healthy"] is True and by_name["edge1"]["error"] is None
    assert by_name["edge1"]["status"]["cache"] == counters["cache"]
    assert by_name["mid1"]["healthy"] is False and "503" in by_name["mid1"]["error"]
    assert by_name["origin"]["healthy"] is False and by_name["origin"]["status"] is None
    assert by_name["origin"]["error"]
