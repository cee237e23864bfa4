"""Authentication, roles, API keys, the API's own limits and the OpenAPI document
(issue 8), against the control plane app on loopback."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from cdn_core.errors import StartupError
from cdn_core.metrics import new_registry
from control_plane.app import create_app
from control_plane.config import ApiLimitConfig, AuthConfig, ControlPlaneConfig, PurgeConfig
from control_plane.routes.openapi import OPERATIONS, routes_of
from control_plane.testing import (
    ADMIN,
    ADMIN_KEY,
    NODE,
    NODE_TOKEN,
    READER_KEY,
    FakeNode,
    auth_config,
)

URL = "http://www.example.test/index.html"
HB = {"tier": "edge", "host": "127.0.0.1", "port": 8080, "admin_url": "http://127.0.0.1:9080"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def config(tmp_path: Path, cp_db: str) -> ControlPlaneConfig:
    return ControlPlaneConfig(
        db=cp_db,
        purge=PurgeConfig(node_timeout=0.5, retry_interval=30),
        auth=auth_config(tmp_path),
    )


@pytest.fixture
async def cp(aiohttp_client: Any, config: ControlPlaneConfig) -> TestClient:
    return await aiohttp_client(create_app(config, registry=new_registry()))


async def new_key(cp: TestClient, role: str, name: str = "ops") -> dict[str, Any]:
    resp = await cp.post("/v1/keys", json={"name": name, "role": role}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return await resp.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/status"),
        ("GET", "/v1/nodes"),
        ("PUT", "/v1/nodes/edge1"),
        ("POST", "/v1/purges"),
        ("GET", "/v1/purges"),
        ("POST", "/v1/keys"),
        ("POST", "/v1/prewarm"),
        ("GET", "/v1/ratelimits"),
        ("GET", "/v1/origins"),
        ("PUT", "/v1/origins/failover"),
        ("POST", "/v1/nodes/edge1/heartbeat"),
    ],
)
async def test_no_key_is_401_with_json(cp: TestClient, method: str, path: str) -> None:
    resp = await cp.request(method, path, json={})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "needs an API key" in (await resp.json())["error"]


async def test_public_routes_need_no_key(cp: TestClient) -> None:
    for path in ("/v1/healthz", "/metrics", "/v1/openapi.json"):
        assert (await cp.get(path)).status == 200


async def test_wrong_key_is_401(cp: TestClient) -> None:
    for headers in (bearer("nope"), bearer("cdn_000000000000.nope"), {"X-API-Key": "x"}):
        resp = await cp.get("/v1/nodes", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid or revoked API key"


async def test_roles(cp: TestClient) -> None:
    reader = bearer(READER_KEY)
    assert (await cp.get("/v1/purges", headers=reader)).status == 200
    resp = await cp.post("/v1/purges", json={"type": "all"}, headers=reader)
    assert resp.status == 403
    assert "role 'reader' may not POST /v1/purges" in (await resp.json())["error"]
    purger = bearer((await new_key(cp, "purger"))["key"])
    assert (await cp.post("/v1/purges", json={"type": "all"}, headers=purger)).status == 201
    for method, path in (("POST", "/v1/keys"), ("PUT", "/v1/origins/failover")):
        resp = await cp.request(method, path, json={}, headers=purger)
        assert resp.status == 403 and "admin" in (await resp.json())["error"]
    # the node token is for the nodes' own calls only
    assert (await cp.post("/v1/purges", json={"type": "all"}, headers=NODE)).status == 403
    assert (await cp.get("/v1/status", headers=NODE)).status == 403
    assert (await cp.get("/v1/purges?after_seq=0", headers=NODE)).status == 200
    resp = await cp.post("/v1/nodes/e1/heartbeat", json=HB, headers=ADMIN)
    assert resp.status == 403 and "node role" in (await resp.json())["error"]


async def test_keys_create_list_revoke(cp: TestClient) -> None:
    made = await new_key(cp, "reader", "grafana")
    assert made["key"].startswith(f"cdn_{made['id']}.") and made["revoked_at"] is None
    assert (await cp.get("/v1/nodes", headers=bearer(made["key"]))).status == 200
    listed = (await (await cp.get("/v1/keys", headers=ADMIN)).json())["keys"]
    assert [k["name"] for k in listed] == ["grafana"]
    assert "key" not in listed[0] and "hash" not in listed[0]
    resp = await cp.delete(f"/v1/keys/{made['id']}", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["revoked_at"] is not None
    assert (await cp.get("/v1/nodes", headers=bearer(made["key"]))).status == 401
    # a key with the right id and a wrong secret is refused
    forged = made["key"].rsplit(".", 1)[0] + ".forged"
    assert (await cp.get("/v1/nodes", headers=bearer(forged))).status == 401
    assert (await cp.delete("/v1/keys/000000000000", headers=ADMIN)).status == 404
    assert (await cp.delete("/v1/keys/bad", headers=ADMIN)).status == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "", "role": "admin"}, "name"),
        ({"name": "x"}, "role: field required"),
        ({"name": "x", "role": "admin", "ttl": 1}, "unknown field 'ttl'"),
    ],
)
async def test_bad_key_bodies_are_400(cp: TestClient, body: Any, needle: str) -> None:
    resp = await cp.post("/v1/keys", json=body, headers=ADMIN)
    assert resp.status == 400 and needle in (await resp.json())["error"]


async def test_keys_survive_restart_and_are_stored_hashed(
    aiohttp_client: Any, config: ControlPlaneConfig
) -> None:
    cp1 = await aiohttp_client(create_app(config, registry=new_registry()))
    made = await new_key(cp1, "purger")
    await cp1.close()
    if "://" not in config.db:  # (on PostgreSQL the rows are checked through the API only)
        raw = b"".join(p.read_bytes() for p in Path(config.db).parent.glob("control.db*"))
        assert made["key"].split(".", 1)[1].encode() not in raw
    cp2 = await aiohttp_client(create_app(config, registry=new_registry()))
    resp = await cp2.post("/v1/purges", json={"type": "all"}, headers=bearer(made["key"]))
    assert resp.status == 201


async def test_basic_auth_and_env_bootstrap(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDN_TEST_ADMIN", "from-the-environment")
    config = ControlPlaneConfig(
        db=str(tmp_path / "c.db"), auth=AuthConfig(admin_key_env="CDN_TEST_ADMIN")
    )
    cp = await aiohttp_client(create_app(config, registry=new_registry()))
    assert (await cp.get("/v1/keys", headers=bearer("from-the-environment"))).status == 200
    basic = base64.b64encode(b"router:from-the-environment").decode()
    assert (await cp.get("/v1/nodes", headers={"Authorization": f"Basic {basic}"})).status == 200


async def test_missing_key_file_fails_startup(tmp_path: Path) -> None:
    config = ControlPlaneConfig(
        db=str(tmp_path / "c.db"), auth=AuthConfig(admin_key_file=str(tmp_path / "none.key"))
    )
    runner = web.AppRunner(create_app(config, registry=new_registry()))
    with pytest.raises(StartupError, match="none.key"):
        await runner.setup()
    await runner.cleanup()


async def test_fan_out_carries_the_node_token(cp: TestClient, aiohttp_server: Any) -> None:
    node = FakeNode("edge1", "edge", token=NODE_TOKEN)
    server = await aiohttp_server(node.app())
    body = {**HB, "admin_url": str(server.make_url("")).rstrip("/")}
    assert (await cp.put("/v1/nodes/edge1", json=body, headers=ADMIN)).status == 200
    resp = await cp.post("/v1/purges", json={"type": "url", "value": URL}, headers=ADMIN)
    assert (await resp.json())["state"] == "complete" and len(node.calls) == 1


async def test_api_rate_limit_and_body_size(aiohttp_client: Any, tmp_path: Path) -> None:
    config = ControlPlaneConfig(
        db=str(tmp_path / "c.db"),
        auth=auth_config(tmp_path),
        api=ApiLimitConfig(rate=0.001, burst=2, max_body_bytes=1024),
    )
    cp = await aiohttp_client(create_app(config, registry=new_registry()))
    assert [(await cp.get("/v1/nodes", headers=ADMIN)).status for _ in range(2)] == [200, 200]
    resp = await cp.get("/v1/nodes", headers=ADMIN)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "too many API requests" in (await resp.json())["error"]
    # another key has its own bucket; the nodes' token is not limited
    assert (await cp.get("/v1/nodes", headers=bearer(READER_KEY))).status == 200
    for _ in range(3):
        resp = await cp.post("/v1/nodes/e1/heartbeat", json=HB, headers=NODE)
        assert resp.status == 200
    resp = await cp.post("/v1/nodes/e1/heartbeat", data=b"{" + b" " * 2048 + b"}", headers=NODE)
    assert resp.status == 413 and "too large" in (await resp.json())["error"]


async def test_openapi_describes_every_route(cp: TestClient) -> None:
    doc = await (await cp.get("/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert described == routes_of(cp.app) == set(OPERATIONS)
    purge = doc["paths"]["/v1/purges"]["post"]
    assert purge["x-roles"] == ["admin", "purger"]
    assert "type" in purge["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert doc["paths"]["/v1/healthz"]["get"]["security"] == []


async def test_admin_key_fixture_value() -> None:
    assert bearer(ADMIN_KEY) == ADMIN
