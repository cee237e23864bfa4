"""Several control-plane replicas on one PostgreSQL database (issue 22), in process on
loopback: the leader lease, shared state, nodes and cdnctl moving between replicas, and
an unreachable database."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from nodeharness import Route

from cdn_core.endpoints import Endpoints, should_fail_over, split_urls
from cdn_core.metrics import new_registry
from cdn_core.node.app import Node
from control_plane.api import LIVE
from control_plane.app import create_app
from control_plane.cli.common import CliError, request
from control_plane.config import ClusterConfig, ControlPlaneConfig, PurgeConfig
from control_plane.pgcluster import PgCluster
from control_plane.testing import ADMIN, NODE_TOKEN, auth_config, register_fake

FAST = ClusterConfig(lease_ttl=0.6, interval=0.1)


@pytest.fixture
def pg_db(pg_cluster: PgCluster) -> str:
    return pg_cluster.create_database()


def replica_config(tmp_path: Path, db: str, name: str) -> ControlPlaneConfig:
    return ControlPlaneConfig(
        name=name, db=db, status_timeout=0.5, cluster=FAST,
        purge=PurgeConfig(node_timeout=0.5, retry_interval=0.05),
        auth=auth_config(tmp_path),
    )


async def replica(aiohttp_server: Any, aiohttp_client: Any, config: ControlPlaneConfig
                  ) -> TestClient:
    server = await aiohttp_server(create_app(config, registry=new_registry()))
    return await aiohttp_client(server, headers=ADMIN)


def leading(client: TestClient) -> bool:
    cluster = client.server.app[LIVE].cluster
    return cluster is not None and cluster.is_leader


async def until(check: Any, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)


def test_endpoints_order_and_failover_statuses() -> None:
    ends = Endpoints(split_urls("http://a:1, http://b:2/ ,http://c:3"))
    assert ends.order() == ["http://a:1", "http://b:2", "http://c:3"]
    ends.answered("http://b:2")
    assert ends.current == "http://b:2"
    assert ends.order() == ["http://b:2", "http://c:3", "http://a:1"]
    assert [s for s in (400, 404, 500, 502, 503, 504) if should_fail_over(s)] == [502, 503, 504]
    with pytest.raises(ValueError, match="ftp://x"):
        split_urls("http://a,ftp://x")
    with pytest.raises(ValueError, match="no URL"):
        split_urls(" , ")


async def test_two_replicas_share_state_and_one_leads(
        aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, pg_db: str) -> None:
    a = await replica(aiohttp_server, aiohttp_client, replica_config(tmp_path, pg_db, "cp-a"))
    b = await replica(aiohttp_server, aiohttp_client, replica_config(tmp_path, pg_db, "cp-b"))
    await until(lambda: leading(a) != leading(b))
    # A purge accepted by one replica is complete when read through the other.
    edge = await register_fake(a, aiohttp_server, "edge1", "edge")
    purge = await (await a.post("/v1/purges", json={"type": "all"})).json()
    assert purge["state"] == "complete" and edge.purged
    seen = await (await b.get(f"/v1/purges/{purge['id']}")).json()
    assert seen["state"] == "complete" and seen["seq"] == purge["seq"]
    # Seqs stay unique and in order whichever replica takes the purge.
    more = await asyncio.gather(*((a if i % 2 else b).post("/v1/purges", json={"type": "all"})
                                  for i in range(10)))
    seqs = sorted([(await r.json())["seq"] for r in more])
    assert seqs == list(range(purge["seq"] + 1, purge["seq"] + 11))
    # A key made on one replica is accepted by the other from its next tick.
    made = await (await a.post("/v1/keys", json={"name": "ops", "role": "reader"})).json()
    bearer = {"Authorization": f"Bearer {made['key']}"}

    async def accepted() -> bool:
        return (await b.get("/v1/nodes", headers=bearer)).status == 200

    async with asyncio.timeout(5):
        while not await accepted():
            await asyncio.sleep(0.05)
    view = await (await b.get("/v1/cluster")).json()
    assert {r["name"] for r in view["replicas"] if r["alive"]} == {"cp-a", "cp-b"}
    leader = a if leading(a) else b
    assert view["leader"] == leader.server.app[LIVE].cluster.id  # type: ignore[union-attr]
    assert [r["leader"] for r in view["replicas"]].count(True) == 1


async def test_leadership_moves_when_the_leader_stops(
        aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, pg_db: str) -> None:
    a = await replica(aiohttp_server, aiohttp_client, replica_config(tmp_path, pg_db, "cp-a"))
    b = await replica(aiohttp_server, aiohttp_client, replica_config(tmp_path, pg_db, "cp-b"))
    await until(lambda: leading(a) or leading(b))
    leader, other = (a, b) if leading(a) else (b, a)
    term = (await (await other.get("/v1/cluster")).json())["lease"]["term"]
    # Without a clean shutdown (no release): the lease has to expire first.
    cluster = leader.server.app[LIVE].cluster
    assert cluster is not None
    cluster.lease = None  # so its shutdown does not release the lease
    await leader.close()
    await until(lambda: leading(other), seconds=FAST.lease_ttl + FAST.interval + 2)
    view = await (await other.get("/v1/cluster")).json()
    assert view["lease"]["term"] > term and view["self"]["leader"] is True


@pytest.fixture
def own_pg() -> Iterator[PgCluster]:
    """A PostgreSQL server of this test's own, to stop and start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cdn-pg-")), port)
    cluster.start()
    yield cluster
    cluster.stop("immediate")


async def test_database_outage_is_503_and_recovers(
        aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, own_pg: PgCluster) -> None:
    cp = await replica(aiohttp_server, aiohttp_client,
                       replica_config(tmp_path, own_pg.url(), "cp-a"))
    before = await (await cp.post("/v1/purges", json={"type": "all"})).json()
    await register_fake(cp, aiohttp_server, "edge1", "edge")
    assert len((await (await cp.get("/v1/nodes")).json())["nodes"]) == 1
    own_pg.stop("immediate")
    # Reads answer from what this replica last read, and say so.
    listed = await (await cp.get("/v1/nodes")).json()
    assert [n["name"] for n in listed["nodes"]] == ["edge1"]
    assert "database unavailable" in listed["stale"]
    status = await (await cp.get("/v1/status")).json()
    assert status["nodes"][0]["healthy"] is True and "stale" in status
    view = await (await cp.get("/v1/cluster")).json()
    assert "stale" in view and view["self"]["name"] == "cp-a"
    resp = await cp.post("/v1/purges", json={"type": "all"})
    body = await resp.json()
    assert resp.status == 503 and "database unavailable" in body["error"]
    assert resp.headers["Retry-After"] == "1"
    assert (await cp.get("/v1/healthz")).status == 200  # alive: not to be restarted
    cluster = cp.server.app[LIVE].cluster
    assert cluster is not None
    await until(lambda: cluster.ok is False)
    ready = await cp.get("/v1/readyz")  # still in rotation: every replica shares the database
    assert ready.status == 200 and "database unavailable" in (await ready.json())["database"]
    await until(lambda: not cluster.is_leader)  # no leading without the database
    own_pg.start()
    await until(lambda: cluster.ok is True and cluster.is_leader)
    assert (await (await cp.get("/v1/readyz")).json())["database"] == "ok"
    after = await (await cp.post("/v1/purges", json={"type": "all"})).json()
    assert after["seq"] == before["seq"] + 1  # the purge before the outage was kept
    assert (await cp.get(f"/v1/purges/{before['id']}")).status == 200


async def test_cli_and_nodes_move_to_the_next_replica(
        aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, pg_db: str,
        origin: Any, make_node: Any) -> None:
    with socket.socket() as s:  # a port nobody listens on: a replica that is down
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    cp = await replica(aiohttp_server, aiohttp_client, replica_config(tmp_path, pg_db, "cp-a"))
    live = str(cp.make_url("")).rstrip("/")
    api = f"{dead},{live}"
    status, data = await asyncio.to_thread(
        request, api, "GET", "/v1/cluster", key="test-admin-key")
    assert status == 200 and data["self"]["name"] == "cp-a"
    with pytest.raises(CliError, match="no control plane answered"):
        await asyncio.to_thread(request, f"{dead},{dead}/x", "GET", "/v1/cluster")
    origin.routes["/p"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"x")
    edge: Node = await make_node([origin.url], control={
        "url": api, "token": NODE_TOKEN, "interval": 3600, "timeout": 2})
    async with asyncio.timeout(5):
        while edge.sync.ok is not True:
            await asyncio.sleep(0.01)
    assert edge.sync.describe()["url"] == live
    assert (await cp.get("/v1/nodes/edge1")).status == 200



async def test_every_replica_shows_the_leaders_origin_verdict(
        aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, pg_db: str) -> None:
    from control_plane.config import FailoverConfig

    watch = FailoverConfig(auto=True, interval=0.05, fall=2, rise=2)
    a = await replica(aiohttp_server, aiohttp_client, replica_config(
        tmp_path, pg_db, "cp-a").model_copy(update={"failover": watch}))
    b = await replica(aiohttp_server, aiohttp_client, replica_config(
        tmp_path, pg_db, "cp-b").model_copy(update={"failover": watch}))
    await until(lambda: leading(a) != leading(b))
    follower = b if leading(a) else a
    await register_fake(a, aiohttp_server, "origin", "origin", fail=True)

    async def verdict() -> dict[str, Any]:
        return (await (await follower.get("/v1/origins")).json())

    async with asyncio.timeout(5):
        while (await verdict())["watch"]["state"] != "down":
            await asyncio.sleep(0.05)
    seen = await verdict()
    assert seen["failover"]["forced"] is True and seen["failover"]["auto"] is True
