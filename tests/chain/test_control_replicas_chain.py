"""Two control-plane replicas on one PostgreSQL database, as real processes under
``cdnctl up --control-replicas 2 --db postgresql://...`` (issue 22): a purge through one
replica completes as read through the other; SIGKILL of the leader during a burst of
200 purges loses none, and another replica leads within 5 s; PostgreSQL stopped for 10 s
gives 503 on writes while the edges keep serving, and everything recovers by itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from stackproc import ROOT, SITE, STACK

from control_plane.netcheck import free_net
from control_plane.pgcluster import PgCluster
from control_plane.stack import load_stack, on_net

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replicas:
    def __init__(self, proc: subprocess.Popen[bytes], state: Path, urls: list[str],
                 edges: list[str], pg: PgCluster) -> None:
        self.proc, self.state, self.urls, self.edges, self.pg = proc, state, urls, edges, pg
        self.key = (state / "admin.key").read_text().strip()

    def call(self, url: str, method: str, path: str, body: Any = None,
             timeout: float = 10) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def leader(self) -> str | None:
        """The URL of the leading replica, asking each in turn."""
        for url in self.urls:
            try:
                status, view = self.call(url, "GET", "/v1/cluster", timeout=1)
            except OSError:
                continue
            if status == 200 and view["self"]["leader"]:
                return url
        return None

    def pid_of(self, url: str) -> int:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        out = subprocess.run(["pgrep", "-f", f"control_plane --config .* --host {host} --port {port}"],
                             capture_output=True, text=True).stdout.split()
        assert len(out) == 1, out
        return int(out[0])

    def edge_get(self, path: str) -> tuple[int, str]:
        req = urllib.request.Request(f"http://{self.edges[0]}:8080{path}", headers={"Host": SITE})
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()
            return resp.status, ", ".join(resp.headers.get_all("Cache-Status") or [])


@pytest.fixture(scope="module")
def replicas() -> Iterator[Replicas]:
    pg = PgCluster(Path(tempfile.mkdtemp(prefix="cdn-pg-")), _free_port())
    pg.start()
    db = pg.create_database("cdn")
    state = Path(tempfile.mkdtemp(prefix="cdn-replicas-"))
    config, _ = load_stack(STACK)
    net = free_net(config)
    moved = on_net(config, net)
    log = state / "cdnctl-up.log"
    env = {**os.environ, "CDN_STATE_DIR": str(state)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "up", "--config", str(STACK),
             "--net", net, "--control-replicas", "2", "--db", db],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 90
    while b"stack is up" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pg.stop("immediate")
            pytest.fail(f"stack not up:\n{log.read_text()}")
        time.sleep(0.2)
    urls = moved.control_plane.model_copy(update={"replicas": 2}).urls()
    yield Replicas(proc, state, urls, [n.host for n in moved.edges.nodes], pg)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    pg.stop("immediate")


def test_purge_through_one_replica_completes_through_the_other(replicas: Replicas) -> None:
    a, b = replicas.urls
    status, purge = replicas.call(a, "POST", "/v1/purges",
                                  {"type": "url", "value": f"http://{SITE}/index.html"})
    assert status == 201 and purge["state"] == "complete", purge
    status, seen = replicas.call(b, "GET", f"/v1/purges/{purge['id']}")
    assert status == 200 and seen["state"] == "complete" and len(seen["nodes"]) == 5


def test_leader_killed_during_a_purge_burst(replicas: Replicas) -> None:
    leader = replicas.leader()
    assert leader is not None
    other = next(u for u in replicas.urls if u != leader)
    pid = replicas.pid_of(leader)
    old = replicas.call(leader, "GET", "/v1/cluster")[1]["self"]["id"]

    def purge(i: int) -> tuple[int, Any]:
        # Each client sends to the leader first and moves to the other replica when the
        # leader cannot be reached, as cdnctl and the nodes do.
        for url in (leader, other) if i % 2 else (other, leader):
            try:
                return replicas.call(url, "POST", "/v1/purges",
                                     {"type": "tag", "value": f"burst-{i}"})
            except OSError:
                continue
        return 0, None

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(purge, i) for i in range(200)]
        time.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        moved_after = None
        while time.monotonic() - killed < 10:
            # The leader may be the surviving replica or the killed one restarted by
            # cdnctl up (a new replica id): either way not the dead one.
            status, view = replicas.call(other, "GET", "/v1/cluster", timeout=2)
            if status == 200 and view["leader"] not in (None, old):
                moved_after = time.monotonic() - killed
                break
            time.sleep(0.1)
        results = [f.result() for f in futures]
    assert moved_after is not None and moved_after < 5.0, (moved_after, view)
    accepted = [body for status, body in results if status == 201]
    assert len(accepted) == 200, [r for r in results if r[0] != 201][:3]
    ids = {p["id"] for p in accepted}
    # Every accepted purge completes: the new leader retries what the dead one left.
    deadline = time.monotonic() + 30
    while True:
        status, listed = replicas.call(other, "GET", "/v1/purges?limit=500")
        mine = [p for p in listed["purges"] if p["id"] in ids]
        if len(mine) == 200 and all(p["state"] == "complete" for p in mine):
            break
        assert time.monotonic() < deadline, [p for p in mine if p["state"] != "complete"][:2]
        time.sleep(0.5)
    seqs = sorted(p["seq"] for p in mine)
    assert len(set(seqs)) == 200


def test_database_outage_is_503_nodes_keep_serving_and_all_recovers(
        replicas: Replicas) -> None:
    for _ in range(2):
        assert replicas.edge_get("/index.html")[0] == 200
    a = replicas.urls[0]
    replicas.pg.stop("immediate")
    try:
        started = time.monotonic()
        status, body = replicas.call(a, "POST", "/v1/purges", {"type": "all"})
        assert status == 503 and "database unavailable" in body["error"], body
        while time.monotonic() - started < 10:
            status, cache = replicas.edge_get("/index.html")
            assert status == 200 and "hit" in cache
            time.sleep(1)
    finally:
        replicas.pg.start()
    deadline = time.monotonic() + 20
    while True:
        status, body = replicas.call(a, "POST", "/v1/purges", {"type": "all"})
        if status == 201:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    while replicas.leader() is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
