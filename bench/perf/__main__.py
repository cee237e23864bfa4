"""``python -m bench.perf [--quick] [options]``: the whole HTTP comparison in one run.

Starts an nginx static origin, nginx ``proxy_cache`` (1 worker), Varnish and our edge (1
process, plus ``--workers N`` processes), warms them, then measures interleaved:
cache hits of 1 KiB / 100 KiB / 1 MiB with wrk, the miss path (1,000 concurrent cold
requests for 100 keys) and memory (RSS per cached byte). Writes
``bench/results/perf-<time>.jsonl`` and ``.md`` (and, for a full run,
``bench/results/PERFORMANCE.md``). Everything started is stopped on exit, on SIGTERM /
SIGINT, and when ``--max-seconds`` runs out.

``python -m bench.perf profile``: py-spy profile of the edge's hit path (see profile.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.perf import phases, report
from bench.perf.procs import Interrupted, Procs, first_output_line, install_signal_handlers
from bench.perf.servers import REPO, SIZES, Servers, targets

RESULTS = REPO / "bench" / "results"
TOOLS = ("nginx", "varnishd", "wrk", "taskset")


def versions() -> str:
    out = first_output_line
    import httptools
    import uvloop

    return "; ".join(
        [
            out(["nginx", "-v"]).replace("nginx version: ", ""),
            out(["varnishd", "-V"]).split(" revision")[0].replace("varnishd (", ""),
            out(["wrk", "-v"]).split(" [")[0],
            f"Python {platform.python_version()}, uvloop {uvloop.__version__}, "
            f"httptools {httptools.__version__}",
        ]
    )


def edge_supports_workers() -> bool:
    p = subprocess.run(
        [sys.executable, "-m", "edge", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    return "--workers" in p.stdout


MAX_WORKERS = 64


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _workers(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_WORKERS}, got {value}")
    return value


def _sizes(text: str) -> list[str]:
    sizes = [s for s in text.split(",") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown) or 'none given'}: sizes are {','.join(SIZES)}"
        )
    return sizes


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="bench/run.sh",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="about 1.5 minutes: 2 s wrk runs, 1 miss round, small memory fills",
    )
    ap.add_argument(
        "--rounds", type=_positive, help="interleaved rounds (default 3; quick 2)"
    )
    ap.add_argument(
        "--duration", type=_positive, help="seconds per wrk run (default 8; quick 2)"
    )
    ap.add_argument(
        "--sizes", type=_sizes, default=list(SIZES), help="object sizes: 1k,100k,1m"
    )
    ap.add_argument(
        "--workers",
        type=_workers,
        default=2,
        help=f"also measure the edge with N worker processes (0 or 1: skip; at most "
        f"{MAX_WORKERS})",
    )
    ap.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin 1-process servers to CPU0 and the load to CPU1",
    )
    ap.add_argument("--skip-hits", action="store_true")
    ap.add_argument("--skip-miss", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--miss-size", default="100k", choices=list(SIZES))
    ap.add_argument("--run-dir", help="runtime state (default: a new /tmp/cdn-bench-*)")
    ap.add_argument("--results", default=str(RESULTS), help="where results are written")
    ap.add_argument(
        "--max-seconds",
        type=_positive,
        default=900,
        help="stop everything and exit after this long (default 900)",
    )
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print(
            f"missing tools: {', '.join(missing)}; run bench/setup.sh (bench/run.sh does)",
            file=sys.stderr,
        )
        return 2
    rounds = a.rounds or (2 if a.quick else 3)
    duration = a.duration or (2 if a.quick else 8)
    sizes: list[str] = a.sizes
    workers = a.workers if a.workers > 1 and edge_supports_workers() else 1
    if a.workers > 1 and workers == 1:
        print("note: this edge has no --workers option; skipping the multi-worker target")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = Path(a.results)
    results.mkdir(parents=True, exist_ok=True)
    jsonl = results / f"perf-{stamp}{'-quick' if a.quick else ''}.jsonl"
    run_dir = Path(a.run_dir) if a.run_dir else Path(tempfile.mkdtemp(prefix="cdn-bench-"))
    run_dir.chmod(0o755)  # varnishd compiles the VCL as its own unprivileged user
    # Rows go to the run directory as they come and to bench/results only when the run
    # completes: a failed or interrupted run leaves nothing in the tracked directory.
    progress = run_dir / "progress.jsonl"
    rows: list[dict[str, Any]] = []

    def record(r: dict[str, Any]) -> None:
        rows.append(r)
        with open(progress, "a") as f:
            f.write(json.dumps(r) + "\n")
        if r["kind"] == "hit":
            print(
                f"  hit  r{r['round']} {r['size']:>4} {r['target']:<9} "
                f"{r.get('rps', 0):>10,.0f} req/s  p99 {r.get('p99_ms', 0):6.2f} ms  "
                f"{r.get('req_per_cpu_s') or 0:>9,} req/CPU-s  srv {r.get('server_cores')} "
                f"wrk {r.get('wrk_cores')} cores  origin {r.get('origin_fetches')}"
                f"{'  ERROR ' + r['error'] if 'error' in r else ''}",
                flush=True,
            )
        elif r["kind"] == "scale":
            print(
                f"  scale r{r['round']} {r['target']:<9} {r.get('rps', 0):>10,.0f} req/s  "
                f"srv {r.get('server_cores')} wrk {r.get('wrk_cores')} cores"
                f"{'  ERROR ' + r['error'] if 'error' in r else ''}",
                flush=True,
            )
        elif r["kind"] == "miss":
            print(
                f"  miss r{r['round']} {r['target']:<9} {r['rps']:>8,.0f} req/s  "
                f"wall {r['wall_s']:.3f} s  origin fetches {r['origin_fetches']}  "
                f"statuses {r['statuses']} errors {r['errors']}",
                flush=True,
            )
        elif r["kind"] == "memory":
            print(
                f"  mem  {r['target']:<9} {r['object_bytes']:>7} B x {r['objects']}: "
                f"{r['rss_per_cached_byte']:.2f} RSS bytes per cached byte",
                flush=True,
            )

    command = "bench/run.sh " + " ".join(shlex.quote(x) for x in argv)
    install_signal_handlers(a.max_seconds)
    procs = Procs(run_dir)
    t_start = time.monotonic()
    try:
        record(
            {
                "kind": "meta",
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "command": command.strip(),
                "cpus": os.cpu_count(),
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
                "versions": versions(),
                "rounds": rounds,
                "duration": duration,
                "wrk_conns": 50,
                "pin": not a.no_pin,
                "quick": a.quick,
                "run_dir": str(run_dir),
            }
        )
        servers = Servers(run_dir, procs, pin=not a.no_pin)
        servers.start_origin()
        tlist = targets(workers)
        pids: dict[str, int] = {}
        if not (a.skip_hits and a.skip_miss):
            for t in tlist:
                pids[t.name] = servers.start(t)
            for t in tlist:
                seen = servers.warm(t, [phases.SIZE_PATH[s] for s in sizes])
                print(f"warm {t.name}: {seen}", flush=True)
        if not a.skip_hits:
            print(
                f"cache hits: {rounds} rounds x {len(sizes)} sizes x {len(tlist)} servers "
                f"x {duration} s",
                flush=True,
            )
            phases.hits(
                servers, pids, tlist, sizes=sizes, rounds=rounds, duration=duration, record=record
            )
        edges = [t for t in tlist if t.kind == "edge"]
        if not a.skip_hits and len(edges) > 1:
            print(f"worker scaling: {' vs '.join(t.name for t in edges)}, pipelined 1 KiB "
                  f"hits, {rounds} rounds x {duration} s", flush=True)  # fmt: skip
            phases.scaling(
                servers, pids, edges, rounds=rounds, duration=duration, record=record
            )
        if not a.skip_miss:
            print("miss path: 1,000 concurrent cold requests for 100 keys", flush=True)
            phases.misses(
                servers,
                pids,
                [t for t in tlist if t.workers == 1],
                rounds=1 if a.quick else rounds,
                size=a.miss_size,
                conns=1000,
                keys=100,
                run_id=stamp,
                record=record,
            )
        for t in tlist:
            procs.stop(t.name)
        if not a.skip_memory:
            counts = {"1k": 10_000, "100k": 500} if a.quick else {"1k": 50_000, "100k": 2_000}
            print(f"memory: {counts}", flush=True)
            phases.memory(
                servers,
                [t for t in tlist if t.kind in ("edge", "varnish") and t.workers == 1],
                counts=counts,
                run_id=stamp,
                record=record,
            )
    except Interrupted as exc:
        print(f"interrupted ({exc}); stopping everything", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if not a.run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = report.render(rows)
    md_path = jsonl.with_suffix(".md")
    md_path.write_text(md)
    if not a.quick and not (a.skip_hits or a.skip_miss or a.skip_memory):
        (results / "PERFORMANCE.md").write_text(performance_section(md, jsonl.name, rows))
    print("\n" + md)
    print(f"results: {jsonl} and {md_path} ({time.monotonic() - t_start:.0f} s)")
    return 0


def performance_section(md: str, jsonl_name: str, rows: list[dict[str, Any]]) -> str:
    pinned = [r["server_cores"] for r in rows if r.get("kind") == "hit" and r.get("pin")]
    noise = ""
    if pinned:
        share = sum(pinned) / len(pinned)
        noise = (
            f"Pinned servers got {share:.2f} of CPU0 on average while saturated (1.00 = a "
            "core to themselves)"
            + (
                ": other work shared the machine during this run, so absolute req/s are "
                "low and noisy; compare the ratios and requests per CPU-second. "
                if share < 0.9
                else ". "
            )
        )
    return (
        "## Performance\n\n"
        "Our edge (one Python process on uvloop + httptools) against nginx `proxy_cache` "
        "(one worker) and Varnish 7 on the same 2-core VM, cache hits over keep-alive "
        "HTTP/1.1, measured interleaved in one run of `bench/run.sh` (method: "
        f"`bench/README.md`; raw numbers: `bench/results/{jsonl_name}`). Ratios are taken "
        "within each round and then averaged (range over rounds in brackets); requests per "
        "server CPU-second count the server's whole process tree from /proc. "
        + noise
        + "`edge-w2` (2 worker processes) is unpinned and shares the 2 cores with wrk in "
        "the hit table; the worker-scaling table gives it the cores wrk leaves when it "
        "pipelines.\n\n" + md
    )


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Interrupted:
        sys.exit(130)
