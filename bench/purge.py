"""Purge completion time and purge throughput across every node of the one-host stack
(issues 8 and 22).

    python bench/purge.py [--count 1000] [--start]        # the running stack (run/admin.key)
    python bench/purge.py --compare [--count 1000] [--clients 8]

Sends ``--count`` purges (one URL each, ``wait: true``) and reports p50/p95/p99/max of
the completion time the control plane records (``completed_at - created_at``: fan-out to
both mid tiers, then all three edges, every node acknowledging), of the client's round
trip, and purges completed per second. ``--clients`` purges are in flight at once, sent
to the replicas in turn.

``--start`` runs ``cdnctl up`` first (on a free loopback network, state in a temporary
directory) and stops it afterwards. ``--compare`` does that twice, interleaved as one
run each: one control plane on SQLite (the ``cdnctl up`` default) and two replicas on
PostgreSQL (a throwaway server, :class:`control_plane.pgcluster.PgCluster`), and prints
both with the ratios. Target (issue 8): p99 under 150 ms with one client.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from control_plane.netcheck import free_net  # noqa: E402
from control_plane.pgcluster import PgCluster  # noqa: E402
from control_plane.stack import load_stack, on_net  # noqa: E402

STACK = ROOT / "configs" / "stack.yaml"


def parse_time(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def purge(api: str, key: str, i: int) -> tuple[float, float]:
    """One purge with ``wait``; returns (completion s, round trip s)."""
    body = json.dumps({"type": "url", "value": f"http://www.example.test/bench/{i}",
                       "wait": True}).encode()
    req = urllib.request.Request(f"{api}/v1/purges", data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    while True:
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                out = json.loads(resp.read())
            break
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise
            # The API limits each key's request rate (api.rate): wait as it says.
            time.sleep(float(exc.headers.get("Retry-After", "1")))
    rtt = time.perf_counter() - t0
    if out["state"] != "complete":
        raise SystemExit(f"purge {out['id']} not complete: {out['nodes']}")
    return parse_time(out["completed_at"]) - parse_time(out["created_at"]), rtt


def measure(apis: list[str], key: str, count: int, clients: int) -> dict[str, Any]:
    """``count`` purges, ``clients`` at a time, round-robin over ``apis``."""
    for api in apis:
        purge(api, key, -1)  # warm the connection paths
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(lambda i: purge(apis[i % len(apis)], key, i), range(count)))
    wall = time.perf_counter() - t0
    server = [s * 1000 for s, _ in done]
    client = [c * 1000 for _, c in done]
    return {"n": count, "clients": clients, "replicas": len(apis),
            "purges_per_s": round(count / wall, 1),
            "completion_ms": {"p50": round(pct(server, 0.5), 1),
                              "p95": round(pct(server, 0.95), 1),
                              "p99": round(pct(server, 0.99), 1), "max": round(max(server), 1),
                              "mean": round(statistics.fmean(server), 1)},
            "round_trip_ms": {"p50": round(pct(client, 0.5), 1),
                              "p99": round(pct(client, 0.99), 1)}}


class Started:
    """``cdnctl up`` on a free network with its state in a temporary directory."""

    def __init__(self, replicas: int = 1, db: str | None = None) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="bench-purge-"))
        config, _ = load_stack(STACK)
        net = free_net(config)
        cp = on_net(config, net).control_plane.model_copy(update={"replicas": replicas})
        self.apis = cp.urls()
        argv = [sys.executable, "-m", "control_plane.cli", "up", "--config", str(STACK),
                "--net", net, "--control-replicas", str(replicas)]
        if db:
            argv += ["--db", db]
        log = self.state / "up.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "CDN_STATE_DIR": str(self.state)})
        deadline = time.monotonic() + 90
        while b"stack is up" not in log.read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit(f"stack did not start; see {log}")
            time.sleep(0.2)
        self.key = (self.state / "admin.key").read_text().strip()

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def show(name: str, r: dict[str, Any]) -> None:
    c = r["completion_ms"]
    print(f"{name}: n={r['n']} clients={r['clients']} {r['purges_per_s']} purges/s;"
          f" completion p50={c['p50']} ms p95={c['p95']} ms p99={c['p99']} ms"
          f" max={c['max']} ms; round trip p50={r['round_trip_ms']['p50']} ms")


def compare(count: int, clients: int) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg = PgCluster(Path(tempfile.mkdtemp(prefix="bench-pg-")), port)
    pg.start()
    results = {}
    try:
        db = pg.create_database("cdn")
        for name, replicas, target in (("sqlite x1", 1, None), ("postgresql x2", 2, db)):
            stack = Started(replicas, target)
            try:
                results[name] = measure(stack.apis, stack.key, count, clients)
            finally:
                stack.stop()
            show(name, results[name])
    finally:
        pg.stop("immediate")
    a, b = results["sqlite x1"], results["postgresql x2"]
    print(f"ratio postgresql x2 / sqlite x1: purges/s {b['purges_per_s'] / a['purges_per_s']:.2f}x,"
          f" completion p50 {b['completion_ms']['p50'] / a['completion_ms']['p50']:.2f}x,"
          f" p99 {b['completion_ms']['p99'] / a['completion_ms']['p99']:.2f}x")
    print(json.dumps(results))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=1, help="purges in flight at once")
    ap.add_argument("--start", action="store_true", help="start the stack with cdnctl up")
    ap.add_argument("--compare", action="store_true",
                    help="1 replica on SQLite against 2 on PostgreSQL")
    args = ap.parse_args()
    if args.compare:
        return compare(args.count, args.clients)
    if args.start:
        stack = Started()
        try:
            show("stack", measure(stack.apis, stack.key, args.count, args.clients))
        finally:
            stack.stop()
        return 0
    key = (ROOT / "run" / "admin.key").read_text().strip()
    show("stack", measure(os.environ.get("CDN_API", "http://127.0.0.1:9000").split(","),
                          key, args.count, args.clients))
    return 0


if __name__ == "__main__":
    sys.exit(main())
