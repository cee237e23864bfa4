"""Services and versions through the REST API (issue 20): versions are immutable and
numbered, apply of an unchanged document makes none, every problem is reported with its
field path and nothing is stored, activation and rollback, progress from heartbeats,
domains owned by one service, and the active set nodes fetch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from cdn_core.metrics import new_registry
from control_plane.app import create_app
from control_plane.config import ControlPlaneConfig
from control_plane.testing import ADMIN, NODE, READER_KEY, auth_config

ORIGINS = {"servers": [{"url": "http://127.0.0.1:18080"}]}
SHOP = {"name": "shop", "domains": ["shop.example.test"], "origins": ORIGINS}
HB = {"tier": "edge", "host": "127.0.0.1", "port": 8080, "admin_url": "http://127.0.0.1:9080"}
READER = {"Authorization": f"Bearer {READER_KEY}"}


@pytest.fixture
async def cp(aiohttp_client: Any, tmp_path: Path, cp_db: str) -> TestClient:
    config = ControlPlaneConfig(db=cp_db, auth=auth_config(tmp_path))
    return await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)


async def ok(resp: Any, status: int = 200) -> Any:
    data = await resp.json() if resp.status != 204 else None
    assert resp.status == status, data
    return data


async def put(cp: TestClient, document: dict[str, Any], status: int = 201) -> Any:
    return await ok(await cp.post(f"/v1/services/{document['name']}/versions",
                                  json={"document": document}), status)


async def test_versions_are_numbered_and_an_unchanged_apply_makes_none(cp):
    first = await put(cp, SHOP)
    assert first["version"] == 1 and not first["unchanged"]
    again = await put(cp, SHOP, 200)
    assert again == {"version": 1, "unchanged": True, "diff": []}
    second = await put(cp, {**SHOP, "error_pages": {"404": "gone"}})
    assert second["version"] == 2
    assert [c["line"] for c in second["diff"]] == ["+ error_pages.404: 'gone'"]
    versions = await ok(await cp.get("/v1/services/shop/versions"))
    assert [v["version"] for v in versions["versions"]] == [1, 2]
    one = await ok(await cp.get("/v1/services/shop/versions/1"))
    assert one["document"]["domains"] == ["shop.example.test"] and "error_pages" not in \
        one["document"]
    changes = await ok(await cp.get("/v1/services/shop/diff?from=1&to=2"))
    assert [c["path"] for c in changes["changes"]] == ["error_pages.404"]


async def test_every_problem_is_reported_and_nothing_is_stored(cp):
    bad = {**SHOP, "colour": "x", "origins": {"servers": [{"url": "ftp://o"}]},
           "cache_rules": [{"ttl": -1}]}
    data = await ok(await cp.post("/v1/services/shop/versions", json={"document": bad}), 400)
    paths = {p["path"] for p in data["problems"]}
    assert {"colour", "origins.servers[0].url", "cache_rules[0].ttl"} <= paths
    assert "colour" in data["error"]
    await ok(await cp.get("/v1/services/shop"), 404)
    checked = await ok(await cp.post("/v1/services/validate", json=bad), 400)
    assert len(checked["problems"]) == len(data["problems"])
    assert (await ok(await cp.post("/v1/services/validate", json=SHOP)))["ok"] is True


async def test_a_domain_belongs_to_one_service(cp):
    await put(cp, SHOP)
    blog = {"name": "blog", "domains": ["shop.example.test"], "origins": ORIGINS}
    data = await ok(await cp.post("/v1/services/blog/versions", json={"document": blog}), 400)
    assert data["problems"] == [{"path": "domains[0]",
                                 "message": "shop.example.test belongs to service shop"}]


async def test_the_path_name_and_the_document_name_agree(cp):
    data = await ok(await cp.post("/v1/services/blog/versions", json={"document": SHOP}), 400)
    assert data["problems"][0]["path"] == "name"
    await ok(await cp.post("/v1/services/active/versions", json={"document": SHOP}), 400)


async def test_activate_rollback_progress_and_the_active_set(cp):
    await put(cp, SHOP)
    await put(cp, {**SHOP, "error_pages": {"404": "gone"}})
    await ok(await cp.post("/v1/nodes/edge1/heartbeat", json=HB, headers=NODE))
    hb = await ok(await cp.post("/v1/nodes/edge1/heartbeat", json=HB, headers=NODE))
    assert hb["services_generation"] == 0
    svc = await ok(await cp.post("/v1/services/shop/activate", json={"version": 1}))
    assert svc["active_version"] == 1 and svc["progress"] == {
        "version": 1, "state": "pending", "done": 0, "total": 1, "pending_nodes": ["edge1"]}
    hb = await ok(await cp.post("/v1/nodes/edge1/heartbeat", json=HB, headers=NODE))
    assert hb["services_generation"] == 1
    active = await ok(await cp.get("/v1/services/active", headers=NODE))
    assert active["generation"] == 1
    assert [(s["name"], s["version"]) for s in active["services"]] == [("shop", 1)]
    await ok(await cp.post("/v1/nodes/edge1/heartbeat", json={**HB, "services": {"shop": 1}},
                           headers=NODE))
    svc = await ok(await cp.get("/v1/services/shop", headers=READER))
    assert svc["progress"]["state"] == "complete" and svc["active"]["name"] == "shop"

    await ok(await cp.post("/v1/services/shop/activate", json={"version": 2}))
    back = await ok(await cp.post("/v1/services/shop/rollback"))
    assert back["active_version"] == 1 and back["previous_version"] == 2
    await ok(await cp.post("/v1/services/shop/activate", json={"version": 9}), 404)


async def test_delete_stops_serving_and_a_name_can_come_back(cp):
    await put(cp, SHOP)
    await ok(await cp.post("/v1/services/shop/activate", json={"version": 1}))
    await ok(await cp.delete("/v1/services/shop"), 204)
    active = await ok(await cp.get("/v1/services/active"))
    assert active["services"] == [] and active["generation"] == 2
    await ok(await cp.get("/v1/services/shop"), 404)
    assert (await put(cp, SHOP))["version"] == 2  # numbers continue


async def test_writes_need_admin(cp):
    resp = await cp.post("/v1/services/shop/versions", json={"document": SHOP}, headers=READER)
    assert resp.status == 403
    resp = await cp.post("/v1/services/shop/rollback", headers=READER)
    assert resp.status == 403


async def key_for(cp: TestClient, role: str, services: list[str] | None) -> dict[str, str]:
    body: dict[str, Any] = {"name": "ci", "role": role}
    if services is not None:
        body["services"] = services
    made = await ok(await cp.post("/v1/keys", json=body), 201)
    assert made["services"] == services
    return {"Authorization": f"Bearer {made['key']}"}


async def test_a_key_limited_to_one_service_cannot_touch_another(cp):
    blog = {"name": "blog", "domains": ["blog.example.test"], "origins": ORIGINS}
    for document in (SHOP, blog):
        await put(cp, document)
        await ok(await cp.post(f"/v1/services/{document['name']}/activate",
                               json={"version": 1}))
    shop_admin = await key_for(cp, "admin", ["shop"])
    shop_purger = await key_for(cp, "purger", ["shop"])
    listed = await ok(await cp.get("/v1/services", headers=shop_admin))
    assert [s["name"] for s in listed["services"]] == ["shop"]
    await ok(await cp.get("/v1/services/shop", headers=shop_admin))
    for method, path, body in (
        ("GET", "/v1/services/blog", None),
        ("POST", "/v1/services/blog/versions", {"document": blog}),
        ("POST", "/v1/services/blog/rollback", None),
        ("DELETE", "/v1/services/blog", None),
        ("GET", "/v1/services/active", None),
        ("GET", "/v1/nodes", None),
        ("GET", "/v1/ratelimits", None),
        ("POST", "/v1/purges", {"type": "url", "value": "http://blog.example.test/a"}),
        ("POST", "/v1/purges", {"type": "tag", "value": "html"}),
        ("POST", "/v1/purges", {"type": "all"}),
    ):
        resp = await cp.request(method, path, json=body, headers=shop_admin)
        assert resp.status == 403, (method, path, await resp.json())
    done = await ok(await cp.post("/v1/purges", headers=shop_purger, json={
        "type": "url", "value": "http://shop.example.test/a"}), 201)
    other = await ok(await cp.post("/v1/purges", json={
        "type": "host", "value": "blog.example.test"}), 201)
    seen = await ok(await cp.get("/v1/purges", headers=shop_purger))
    assert [p["id"] for p in seen["purges"]] == [done["id"]]
    await ok(await cp.get(f"/v1/purges/{other['id']}", headers=shop_purger), 404)
    await ok(await cp.post("/v1/keys", json={"name": "x", "role": "reader",
                                             "services": ["Bad!"]}), 400)
