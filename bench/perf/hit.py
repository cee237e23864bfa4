"""One wrk measurement of cache hits: req/s, latency percentiles, server CPU.

``wrk -t1 -c50 -dDs --latency -s conf/wrk-report.lua URL`` (the Lua script only adds a
``done()`` hook printing exact percentiles, so wrk keeps its static request). The
server's CPU is its whole process tree's utime+stime from /proc before and after; wrk's
own CPU comes from ``getrusage(RUSAGE_CHILDREN)``.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import time
from typing import Any

from bench.perf.proctree import cpu_seconds
from bench.perf.servers import CONF

WRK_THREADS = 1
WRK_CONNS = 50


def wrk_once(
    *,
    target: str,
    port: int,
    path: str,
    duration: int,
    server_pid: int,
    pin: bool,
    origin_fetches: Any,
    pipeline: int = 0,
) -> dict[str, Any]:
    """One wrk run against ``port``; ``pipeline`` > 0 sends that many requests per write
    (conf/wrk-pipeline.lua) instead of one."""
    url = f"http://127.0.0.1:{port}{path}"
    script = "wrk-pipeline.lua" if pipeline else "wrk-report.lua"
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNS}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(CONF / script),
        url,
    ]
    if pipeline:
        argv += ["--", str(pipeline)]
    if pin:
        argv = ["taskset", "-c", "1", *argv]
    o0 = origin_fetches()
    c0 = cpu_seconds(server_pid)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    t1 = time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c1 = cpu_seconds(server_pid)
    o1 = origin_fetches()
    m = re.search(r"^WRKJSON (\{.*\})$", proc.stdout, re.M)
    if not m:
        return {"error": f"no wrk output (exit {proc.returncode}): {proc.stderr[-300:]}"}
    w = json.loads(m.group(1))
    secs = w["duration_us"] / 1e6
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    cpu = c1 - c0
    wall = t1 - t0
    client_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {
        "rps": round(w["requests"] / secs, 1),
        "requests": w["requests"],
        "p50_ms": w["p50_us"] / 1000,
        "p90_ms": w["p90_us"] / 1000,
        "p99_ms": w["p99_us"] / 1000,
        "max_ms": w["max_us"] / 1000,
        "MBps": round(w["bytes"] / secs / 1e6, 1),
        "errors": w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "server_cpu_s": round(cpu, 2),
        "server_cores": round(cpu / wall, 2),
        # requests per server CPU-second: wrk's count over the tree's CPU in the same window
        "req_per_cpu_s": round(w["requests"] / cpu) if cpu > 0 else None,
        "wrk_cores": round(client_cpu / wall, 2),
        "origin_fetches": o1 - o0,
        # other work on the box (tests of other engineers) shows here
        "loadavg_1m": float(open("/proc/loadavg").read().split()[0]),
    }
