"""The control plane's observability (issue 11) against fake nodes on loopback: the stats
sampler and ``/v1/stats/history``, its gauges on ``/metrics``, the status page's files and
their access rules, and ``cdnctl top --once``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from metricsutil import value

from cdn_core.metrics import new_registry
from control_plane.app import create_app
from control_plane.cli.main import main as cdnctl
from control_plane.config import ControlPlaneConfig, PurgeConfig
from control_plane.history import StatsHistory
from control_plane.routes.stats import HISTORY
from control_plane.testing import ADMIN, ADMIN_KEY, READER_KEY, FakeNode, auth_config


def counters(hits: int, misses: int) -> dict[str, Any]:
    return {"requests": hits + misses, "cache": {"entries": 2, "bytes": 2048,
            "requests_by_status": {"hit": hits, "miss": misses, "stale": 0}}}


@pytest.fixture
def config(tmp_path: Any) -> ControlPlaneConfig:
    return ControlPlaneConfig(
        db=str(tmp_path / "control.db"),
        status_timeout=0.5,
        purge=PurgeConfig(node_timeout=0.5, retry_interval=0.05),
        auth=auth_config(tmp_path),
    )


@pytest.fixture
async def world(aiohttp_client: Any, aiohttp_server: Any, config: ControlPlaneConfig):
    """Two fake edges and a fake mid tier registered with a control plane that samples
    every 50 ms."""
    app = create_app(config, registry=new_registry())
    app[HISTORY] = StatsHistory(interval=0.05, window=60)
    nodes = {}
    for name, tier in (("edge1", "edge"), ("edge2", "edge"), ("mid1", "mid")):
        node = FakeNode(name, tier, status=counters(0, 0))
        server = await aiohttp_server(node.app())
        node.admin_url = str(server.make_url("")).rstrip("/")
        nodes[name] = node
    cp = await aiohttp_client(app, headers=ADMIN)
    for n in nodes.values():
        body = {"tier": n.tier, "host": "127.0.0.1", "port": 8080, "admin_url": n.admin_url}
        assert (await cp.put(f"/v1/nodes/{n.name}", json=body)).status == 200
    return cp, nodes


async def history(cp: TestClient, **headers: str) -> dict[str, Any]:
    resp = await cp.get("/v1/stats/history", headers=headers or None)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def until(cp: TestClient, check, timeout: float = 3.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            data = await history(cp)
            if check(data):
                return data
            await asyncio.sleep(0.03)


async def test_history_rates_and_node_view(world) -> None:
    cp, nodes = world
    await until(cp, lambda d: len(d["nodes"]) == 3)
    nodes["edge1"].status.update(counters(90, 10))
    nodes["edge2"].status.update(counters(50, 50))
    data = await until(cp, lambda d: any((p["tiers"].get("edge") or {}).get("hit_ratio")
                                         for p in d["points"]))
    ratios = [p["tiers"]["edge"]["hit_ratio"] for p in data["points"]
              if (p["tiers"].get("edge") or {}).get("hit_ratio") is not None]
    assert ratios[0] == 0.7  # 140 hits of 200 lookups across both edges
    assert data["interval"] == 0.05 and data["window"] == 60
    view = {n["name"]: n for n in data["nodes"]}
    assert set(view) == {"edge1", "edge2", "mid1"} and all(n["healthy"] for n in view.values())
    assert view["edge1"]["cache_bytes"] == 2048
    last = data["points"][-1]["t"]
    assert (await cp.get(f"/v1/stats/history?since={last}")).status == 200
    assert (await history(cp))["points"][0]["t"] <= last
    resp = await cp.get("/v1/stats/history?since=yesterday")
    assert resp.status == 400 and "since" in (await resp.json())["error"]


async def test_health_gauges_and_changes(world) -> None:
    cp, nodes = world
    await until(cp, lambda d: len(d["nodes"]) == 3)
    nodes["edge2"].fail = True
    await until(cp, lambda d: any(not n["healthy"] for n in d["nodes"]))
    text = await (await cp.get("/metrics")).text()
    assert value(text, "cdn_node_up", node="edge2", tier="edge") == 0
    assert value(text, "cdn_node_up", node="edge1", tier="edge") == 1
    assert value(text, "cdn_node_health_changes_total", tier="edge", state="down") == 1
    assert value(text, "cdn_failover_forced") == 0
    resp = await cp.put("/v1/origins/failover", json={"forced": True, "reason": "drill"})
    assert resp.status == 200
    assert (await cp.delete("/v1/nodes/edge2")).status == 204
    async with asyncio.timeout(3):
        while True:
            text = await (await cp.get("/metrics")).text()
            if value(text, "cdn_failover_forced") == 1 and "edge2" not in text:
                break
            await asyncio.sleep(0.03)


async def test_purge_latency_is_observed(world) -> None:
    cp, _ = world
    resp = await cp.post("/v1/purges", json={"type": "url", "value": "http://a.test/x"})
    assert resp.status == 201 and (await resp.json())["state"] == "complete"
    text = await (await cp.get("/metrics")).text()
    assert value(text, "cdn_purge_latency_seconds_count") == 1
    assert value(text, "cdn_purges_total", state="complete") == 1


async def test_status_page_is_public_and_its_data_is_not(world) -> None:
    cp, _ = world
    resp = await cp.get("/", headers={"Authorization": ""})
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    assert '<table id="nodes">' in html and "/ui/app.js" in html
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for name, ctype in (("app.js", "text/javascript"), ("charts.js", "text/javascript"),
                        ("style.css", "text/css")):
        r = await cp.get(f"/ui/{name}")
        assert r.status == 200 and r.content_type == ctype
    assert (await cp.get("/ui/secret.txt")).status == 404
    assert (await cp.get("/ui/..%2Fapp.py")).status == 404
    no_key = await cp.get("/v1/stats/history", headers={"Authorization": ""})
    assert no_key.status == 401
    reader = await cp.get("/v1/stats/history", headers={"Authorization": f"Bearer {READER_KEY}"})
    assert reader.status == 200
    # no page data is ever interpolated into the HTML: the script renders text only
    js = await (await cp.get("/ui/app.js")).text()
    assert "innerHTML" not in js and "sessionStorage" in js


async def test_cdnctl_top_once(world, capsys, monkeypatch) -> None:
    cp, nodes = world
    await until(cp, lambda d: len(d["nodes"]) == 3)
    nodes["edge1"].status.update(counters(30, 10))
    await until(cp, lambda d: (d["points"][-1]["tiers"].get("edge") or {}).get("rps"))
    monkeypatch.setenv("COLUMNS", "160")
    api = str(cp.make_url("")).rstrip("/")
    rc = await asyncio.to_thread(cdnctl, ["--api", api, "top", "--once", "--key", ADMIN_KEY])
    out = capsys.readouterr().out
    assert rc == 0, out
    for text in ("cdnctl top", "Tiers", "Nodes", "edge1", "edge2", "mid1", "Recent purges",
                 "failover off"):
        assert text in out
    rc = await asyncio.to_thread(cdnctl, ["--api", api, "top", "--once", "--key", "wrong"])
    assert rc == 1 and "401" in capsys.readouterr().err
