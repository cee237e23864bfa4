"""The measurements of a run: cache hits (wrk), worker scaling (pipelined wrk), the miss
path (1,000 concurrent cold requests) and memory (RSS per cached byte)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from bench.perf.hit import wrk_once
from bench.perf.proctree import cpu_seconds, rss_bytes
from bench.perf.servers import REPO, Servers, Target

Record = Callable[[dict[str, Any]], None]

SIZE_PATH = {"1k": "/obj/1k", "100k": "/obj/100k", "1m": "/obj/1m"}


def hits(
    servers: Servers,
    pids: dict[str, int],
    tlist: list[Target],
    *,
    sizes: list[str],
    rounds: int,
    duration: int,
    record: Record,
) -> None:
    """``for round: for size: for target`` (target order reversed on even rounds), so
    every server is measured within seconds of the anchors and drift cancels out."""
    for rnd in range(1, rounds + 1):
        order = tlist if rnd % 2 else list(reversed(tlist))
        for size in sizes:
            for t in order:
                pin = servers.pin and t.pinned
                r = wrk_once(
                    target=t.name,
                    port=t.port,
                    path=SIZE_PATH[size],
                    duration=duration,
                    server_pid=pids[t.name],
                    pin=pin,
                    origin_fetches=servers.origin_fetches,
                )
                record(
                    {
                        "kind": "hit",
                        "target": t.name,
                        "size": size,
                        "round": rnd,
                        "pin": pin,
                        "workers": t.workers,
                        **r,
                    }
                )


PIPELINE_DEPTH = 16


def scaling(
    servers: Servers,
    pids: dict[str, int],
    edges: list[Target],
    *,
    rounds: int,
    duration: int,
    record: Record,
) -> None:
    """Worker scaling: the single edge and the N-worker edge, unpinned, under pipelined
    1 KiB hits (PIPELINE_DEPTH requests per write, so wrk leaves most of the box to the
    server). Alternating, ``rounds`` times."""
    for rnd in range(1, rounds + 1):
        for t in edges if rnd % 2 else list(reversed(edges)):
            r = wrk_once(
                target=t.name,
                port=t.port,
                path=SIZE_PATH["1k"],
                duration=duration,
                server_pid=pids[t.name],
                pin=False,
                origin_fetches=servers.origin_fetches,
                pipeline=PIPELINE_DEPTH,
            )
            record({"kind": "scale", "target": t.name, "round": rnd, "workers": t.workers,
                    "pipeline": PIPELINE_DEPTH, **r})  # fmt: skip


def _loadgen(args: list[str], *, pin: bool, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.perf.loadgen", *args]
    if pin:
        argv = ["taskset", "-c", "1", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {proc.stderr[-1000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def misses(
    servers: Servers,
    pids: dict[str, int],
    tlist: list[Target],
    *,
    rounds: int,
    size: str,
    conns: int,
    keys: int,
    run_id: str,
    record: Record,
) -> None:
    """1,000 connections, one cold request each, for 100 keys never requested before (a
    fresh query string per run): how many reach the origin and how long until all are
    answered."""
    for rnd in range(1, rounds + 1):
        order = tlist if rnd % 2 else list(reversed(tlist))
        for t in order:
            pin = servers.pin and t.pinned
            tag = f"{run_id}-{t.name}-{rnd}"
            o0 = servers.origin_fetches()
            c0 = cpu_seconds(pids[t.name])
            r = _loadgen(
                [
                    "cold",
                    "--port",
                    str(t.port),
                    "--path",
                    SIZE_PATH[size],
                    "--tag",
                    tag,
                    "--conns",
                    str(conns),
                    "--keys",
                    str(keys),
                ],
                pin=pin,
                timeout=120,
            )
            time.sleep(0.3)  # let the last origin log lines land
            c1 = cpu_seconds(pids[t.name])
            record(
                {
                    "kind": "miss",
                    "target": t.name,
                    "round": rnd,
                    "size": size,
                    "keys": keys,
                    "pin": pin,
                    "origin_fetches": servers.origin_fetches() - o0,
                    "server_cpu_s": round(c1 - c0, 3),
                    **r,
                }
            )


def _edge_cache_stats(admin_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=10) as resp:
        return json.loads(resp.read())["cache"]


def memory(
    servers: Servers,
    targets: list[Target],
    *,
    counts: dict[str, int],
    run_id: str,
    record: Record,
) -> None:
    """For each object size: a fresh server, one object fetched (baseline RSS), then N
    distinct objects stored; RSS growth / cached body bytes. The loader uses 16
    keep-alive connections and is not pinned."""
    for size, count in counts.items():
        for t in targets:
            name = f"{t.name}-mem-{size}"
            pid = servers.start(t, name=name, pin=False)
            try:
                servers.warm(t, [SIZE_PATH[size]])
                time.sleep(0.5)
                before = rss_bytes(pid)
                r = _loadgen(
                    [
                        "fill",
                        "--port",
                        str(t.port),
                        "--path",
                        SIZE_PATH[size],
                        "--tag",
                        f"{run_id}-{size}",
                        "--count",
                        str(count),
                        "--conns",
                        "16",
                    ],
                    pin=False,
                    timeout=600,
                )
                time.sleep(1.0)
                after = rss_bytes(pid)
                stored: dict[str, Any] = {}
                if t.kind == "edge":
                    stored = _edge_cache_stats(t.port + 1000)
                cached = r["body_bytes"]
                record(
                    {
                        "kind": "memory",
                        "target": t.name,
                        "object_bytes": cached // count,
                        "objects": count,
                        "cached_bytes": cached,
                        "rss_before": before,
                        "rss_after": after,
                        "rss_per_cached_byte": round((after - before) / cached, 3),
                        "overhead_per_object": round((after - before - cached) / count),
                        "store_entries": stored.get("entries"),
                        "store_bytes": stored.get("bytes"),
                        "statuses": r["statuses"],
                        "fill_wall_s": r["wall_s"],
                    }
                )
            finally:
                servers.procs.stop(name)
