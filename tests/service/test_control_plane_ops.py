"""Heartbeats, purge catch-up listing, prewarm and announce, rate-limit policies, origins
and failover (issue 8), against the control plane with fake nodes on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from cdn_core.metrics import new_registry
from control_plane.app import create_app
from control_plane.config import ControlPlaneConfig, PurgeConfig
from control_plane.testing import ADMIN, NODE, auth_config, register_fake

URL = "http://www.example.test/index.html"
HB = {"tier": "edge", "host": "127.0.0.1", "port": 8080, "admin_url": "http://127.0.0.1:9080"}
POLICY = {"name": "per-client", "limit": 10, "window": 60}
SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>http://www.example.test/</loc></url>
  <url><loc>http://www.example.test/about.html</loc></url>
</urlset>"""


@pytest.fixture
def config(tmp_path: Path, cp_db: str) -> ControlPlaneConfig:
    return ControlPlaneConfig(
        db=cp_db,
        status_timeout=0.5,
        purge=PurgeConfig(node_timeout=0.5, retry_interval=30),
        auth=auth_config(tmp_path),
    )


@pytest.fixture
async def cp(aiohttp_client: Any, config: ControlPlaneConfig) -> TestClient:
    return await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)


fake = register_fake  # serve a fake node and register it


async def ok(resp: Any, status: int = 200) -> Any:
    data = await resp.json() if resp.status != 204 else None
    assert resp.status == status, data
    return data


# -- heartbeats and catch-up ------------------------------------------------------------


async def test_heartbeat_registers_and_reports_head(cp: TestClient) -> None:
    data = await ok(await cp.post("/v1/nodes/edge9/heartbeat", json=HB, headers=NODE))
    assert data == {
        "purge_seq": 0, "ratelimit_version": 0, "signing_version": 0,
        "services_generation": 0, "failover": {"forced": False},
    }
    purge = await ok(await cp.post("/v1/purges", json={"type": "all"}), 201)
    body = {**HB, "purge_seq": purge["seq"]}
    data = await ok(await cp.post("/v1/nodes/edge9/heartbeat", json=body, headers=NODE))
    assert data["purge_seq"] == purge["seq"]
    node = await ok(await cp.get("/v1/nodes/edge9"))
    assert node["alive"] is True and node["purge_seq"] == purge["seq"] and node["last_seen"]
    await cp.put("/v1/nodes/old", json=HB)
    assert (await ok(await cp.get("/v1/nodes/old")))["alive"] is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [({"purge_seq": -1}, "purge_seq"), ({"tier": "x"}, "tier"), ({"admin_url": "h"}, "admin_url")],
)
async def test_bad_heartbeats_are_400(cp: TestClient, change: dict[str, Any], needle: str) -> None:
    resp = await cp.post("/v1/nodes/e1/heartbeat", json={**HB, **change}, headers=NODE)
    assert resp.status == 400 and needle in (await resp.json())["error"]


async def test_purges_after_seq(cp: TestClient) -> None:
    seqs = [
        (await ok(await cp.post("/v1/purges", json={"type": "tag", "value": f"t{i}"}), 201))["seq"]
        for i in range(3)
    ]
    data = await ok(await cp.get(f"/v1/purges?after_seq={seqs[0]}", headers=NODE))
    assert [p["seq"] for p in data["purges"]] == seqs[1:]
    assert data["head_seq"] == seqs[-1] and data["more"] is False
    assert data["purges"][0]["type"] == "tag" and data["purges"][0]["value"] == "t1"
    data = await ok(await cp.get("/v1/purges?after_seq=0&limit=1", headers=NODE))
    assert [p["seq"] for p in data["purges"]] == seqs[:1] and data["more"] is True
    resp = await cp.get("/v1/purges?after_seq=-3")
    assert resp.status == 400 and "after_seq" in (await resp.json())["error"]


# -- prewarm and announce ---------------------------------------------------------------


async def test_prewarm_urls_mid_tier_first(cp: TestClient, aiohttp_server: Any) -> None:
    events: list[tuple[str, str]] = []
    await fake(cp, aiohttp_server, "edge1", "edge", events=events)
    await fake(cp, aiohttp_server, "mid1", "mid", events=events)
    data = await ok(await cp.post("/v1/prewarm", json={"urls": [URL, URL + "?v=2", URL]}))
    assert data["ok"] is True and data["urls"] == 2 and data["tiers"] == ["mid", "edge"]
    assert list(data["nodes"]) == ["mid1", "edge1"]
    assert data["nodes"]["edge1"]["stored"] == 2
    assert events == [("prewarm", "mid1"), ("prewarm", "edge1")]
    data = await ok(await cp.post("/v1/prewarm", json={"urls": [URL], "tiers": ["edge"]}))
    assert list(data["nodes"]) == ["edge1"]


async def test_prewarm_reports_a_failed_node(cp: TestClient, aiohttp_server: Any) -> None:
    await fake(cp, aiohttp_server, "edge1", "edge", fail=True)
    data = await ok(await cp.post("/v1/prewarm", json={"urls": [URL]}))
    assert data["ok"] is False and "HTTP 500" in data["nodes"]["edge1"]["error"]


async def test_prewarm_sitemap_is_fetched_through_an_edge(
    cp: TestClient, aiohttp_server: Any
) -> None:
    edge = await fake(cp, aiohttp_server, "edge1", "edge")
    edge.pages["/sitemap.xml"] = SITEMAP.replace(
        b"</urlset>", b"<url><loc>http://169.254.169.254/latest/</loc></url></urlset>"
    )
    edge.pages["/broken.xml"] = b"<html>"
    data = await ok(
        await cp.post("/v1/prewarm", json={"sitemap": "http://www.example.test/sitemap.xml"})
    )
    # Through the tier path with the site's Host; the metadata address is left out.
    assert edge.page_hosts == ["www.example.test"]
    assert data["urls"] == 2 and data["skipped"] == 1 and edge.prewarms == [
        ["http://www.example.test/", "http://www.example.test/about.html"]
    ]
    resp = await cp.post("/v1/prewarm", json={"sitemap": "http://www.example.test/broken.xml"})
    assert resp.status == 422 and "sitemap" in (await resp.json())["error"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/v1/keys",  # the control plane itself
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.5/",
        "http://localhost/",
        "http://www.example.test:9080/purge",  # an admin port on a served host
        "http://www.example.test@127.0.0.1/",  # user info hiding the real host
        "http://evil.example/",
        "http://[::1]/",
    ],
)
async def test_prewarm_and_sitemaps_only_reach_served_hosts(
    cp: TestClient, aiohttp_server: Any, url: str
) -> None:
    edge = await fake(cp, aiohttp_server, "edge1", "edge")
    errors = set()
    for body in ({"urls": [url]}, {"sitemap": url}):
        resp = await cp.post("/v1/prewarm", json=body)
        assert resp.status == 400
        errors.add((await resp.json())["error"].split(": ", 1)[1])
    resp = await cp.post("/v1/announce", json={"urls": [url]})
    assert resp.status == 400
    errors.add((await resp.json())["error"].split(": ", 1)[1])
    # One answer whatever is (or is not) behind the URL, and the URL is not echoed.
    assert len(errors) == 1 and url not in errors.pop()
    assert edge.prewarms == [] and edge.page_hosts == []


async def test_push_hosts_setting_names_what_is_served(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    config = ControlPlaneConfig(
        db=str(tmp_path / "control.db"),
        auth=auth_config(tmp_path),
        push={"hosts": ["*.shop.test", "127.0.0.1"], "ports": [8080]},
    )
    cp = await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)
    edge = await fake(cp, aiohttp_server, "edge1", "edge")
    urls = ["http://img.shop.test/a.png", "https://a.b.shop.test:8080/", "http://127.0.0.1/"]
    await ok(await cp.post("/v1/prewarm", json={"urls": urls}))
    assert edge.prewarms == [urls]
    for bad in ("http://shop.test/", "http://img.shop.test:8443/", "http://www.example.test/"):
        assert (await cp.post("/v1/prewarm", json={"urls": [bad]})).status == 400


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "either 'urls' or 'sitemap'"),
        ({"urls": [URL], "sitemap": URL}, "either"),
        ({"urls": ["/index.html"]}, "urls.0"),
        ({"urls": []}, "urls"),
        ({"urls": [URL], "tiers": ["origin"]}, "tiers"),
        ({"sitemap": "ftp://x/s.xml"}, "sitemap"),
    ],
)
async def test_bad_prewarm_bodies_are_400(cp: TestClient, body: Any, needle: str) -> None:
    resp = await cp.post("/v1/prewarm", json=body)
    assert resp.status == 400 and needle in (await resp.json())["error"]


async def test_announce_purges_then_prewarms(cp: TestClient, aiohttp_server: Any) -> None:
    events: list[tuple[str, str]] = []
    await fake(cp, aiohttp_server, "mid1", "mid", events=events)
    edge = await fake(cp, aiohttp_server, "edge1", "edge", events=events)
    data = await ok(await cp.post("/v1/announce", json={"urls": [URL]}))
    assert [p["state"] for p in data["purges"]] == ["complete"]
    assert data["prewarm"]["ok"] is True and edge.calls[0]["value"] == URL
    kinds = [e for e, _ in events]
    assert kinds.index("prewarm") > max(i for i, k in enumerate(kinds) if k == "end")


# -- rate-limit policies ----------------------------------------------------------------


async def test_ratelimit_crud_and_version(
    cp: TestClient, aiohttp_client: Any, config: ControlPlaneConfig
) -> None:
    made = await ok(await cp.post("/v1/ratelimits", json=POLICY), 201)
    assert made["mode"] == "enforce" and made["key"] == "client" and made["path_prefix"] == "/"
    listed = await ok(await cp.get("/v1/ratelimits", headers=NODE))
    assert listed["version"] == 1 and [p["id"] for p in listed["policies"]] == [made["id"]]
    resp = await cp.post("/v1/ratelimits", json=POLICY)
    assert resp.status == 409 and "name" in (await resp.json())["error"]
    changed = {**POLICY, "mode": "shadow", "host": "WWW.Example.test"}
    put = await ok(await cp.put(f"/v1/ratelimits/{made['id']}", json=changed))
    assert put["mode"] == "shadow" and put["host"] == "www.example.test"
    hb = await ok(await cp.post("/v1/nodes/e1/heartbeat", json=HB, headers=NODE))
    assert hb["ratelimit_version"] == 2
    await cp.close()
    cp2 = await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)
    assert (await ok(await cp2.get(f"/v1/ratelimits/{made['id']}")))["mode"] == "shadow"
    assert (await cp2.delete(f"/v1/ratelimits/{made['id']}")).status == 204
    assert (await cp2.delete(f"/v1/ratelimits/{made['id']}")).status == 404
    assert (await cp2.get(f"/v1/ratelimits/{made['id']}")).status == 404
    assert (await cp2.put("/v1/ratelimits/nope", json=POLICY)).status == 404
    assert (await ok(await cp2.get("/v1/ratelimits")))["version"] == 3


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"window": -1}, "window"),
        ({"key": "cookie"}, "key"),
        ({"mode": "log"}, "mode"),
        ({"host": "http://x"}, "host"),
        ({"path_prefix": "img/"}, "path_prefix"),
        ({"api_key_header": "bad header"}, "api_key_header"),
        ({"name": "a b"}, "name"),
        ({"burst": 3}, "unknown field 'burst'"),
    ],
)
async def test_bad_policies_are_400(cp: TestClient, change: dict[str, Any], needle: str) -> None:
    resp = await cp.post("/v1/ratelimits", json={**POLICY, **change})
    assert resp.status == 400 and needle in (await resp.json())["error"]


# -- origins and failover ---------------------------------------------------------------


async def test_origins_and_failover(cp: TestClient, aiohttp_server: Any) -> None:
    ups = [{"url": "http://127.0.0.1:18080", "up": False, "failures": 3, "fetches": 9}]
    await fake(cp, aiohttp_server, "origin", "origin")
    await fake(cp, aiohttp_server, "mid1", "mid", status={"upstreams": ups})
    await fake(cp, aiohttp_server, "mid2", "mid", status={"upstreams": [{**ups[0], "up": True}]})
    data = await ok(await cp.get("/v1/origins"))
    assert data["failover"] == {"forced": False, "auto": False, "reason": None, "since": None,
                                "services": {}}
    assert [o["name"] for o in data["origins"]] == ["origin"] and data["origins"][0]["healthy"]
    (up,) = data["upstreams"]
    assert up["url"] == ups[0]["url"] and up["up"] is True
    assert up["seen_by"]["mid1"] == {"up": False, "failures": 3, "fetches": 9}
    state = await ok(await cp.put("/v1/origins/failover", json={"forced": True, "reason": "db"}))
    assert state["forced"] is True and state["reason"] == "db" and state["since"]
    hb = await ok(
        await cp.post("/v1/nodes/mid1/heartbeat", json={**HB, "tier": "mid"}, headers=NODE)
    )
    assert hb["failover"]["forced"] is True
    resp = await cp.put("/v1/origins/failover", json={"forced": "yes"})
    assert resp.status == 400 and "forced" in (await resp.json())["error"]
    state = await ok(await cp.put("/v1/origins/failover", json={"forced": False}))
    assert state == {"forced": False, "auto": False, "reason": None, "since": None,
                     "services": {}}
