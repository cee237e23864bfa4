"""Purge completion time across every node of the one-host stack (issue 8).

    python bench/purge.py [--count 1000] [--start]

Sends ``--count`` purges (one URL each, ``wait: true``) to the control plane one after
another and reports p50/p95/p99/max of the completion time the control plane records
(``completed_at - created_at``: fan-out to both mid tiers, then all three edges, every
node acknowledging) and of the client's round trip. ``--start`` runs ``cdnctl up`` first
and stops it afterwards; otherwise the stack must already be up (key: run/admin.key).
Target (issue 8): p99 under 150 ms.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API = "http://127.0.0.1:9000"


def parse_time(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def purge(key: str, i: int) -> tuple[float, float]:
    body = json.dumps({"type": "url", "value": f"http://www.example.test/bench/{i}",
                       "wait": True}).encode()
    req = urllib.request.Request(f"{API}/v1/purges", data=body, method="POST", headers={
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--start", action="store_true", help="start the stack with cdnctl up")
    args = ap.parse_args()
    proc = None
    if args.start:
        log = open("/tmp/bench-purge-stack.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "control_plane.cli", "up"], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while b"stack is up" not in Path("/tmp/bench-purge-stack.log").read_bytes():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("stack did not start; see /tmp/bench-purge-stack.log")
            time.sleep(0.2)
    try:
        key = (ROOT / "run" / "admin.key").read_text().strip()
        purge(key, -1)  # warm the connection paths
        server, client = [], []
        for i in range(args.count):
            s, c = purge(key, i)
            server.append(s * 1000)
            client.append(c * 1000)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    for name, values in (("completion (control plane)", server), ("round trip (client)", client)):
        print(f"{name}: n={len(values)} p50={pct(values, 0.5):.1f} ms "
              f"p95={pct(values, 0.95):.1f} ms p99={pct(values, 0.99):.1f} ms "
              f"max={max(values):.1f} ms mean={statistics.fmean(values):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
