"""``python -m bench.perf.h2 [--quick] [options]`` (``bench/run.sh h2``): cache hits over
HTTP/2, our edge beside nginx ``proxy_cache`` with ``http2`` on the same certificate,
and our edge over HTTP/3.

Starts the nginx static origin, nginx (1 worker, ``listen ssl http2``,
``conf/nginx-h2.conf``) and our edge (1 process, ``configs/edge.yaml`` with its TLS port
and HTTP/3 on), both on one local-CA certificate (:func:`cdn_core.pki.ensure_demo_pki`),
warms ``/obj/1k`` and ``/obj/100k`` on each, then for each round and size runs
``h2load -c50 -m10 -D S`` against each server (order reversed on even rounds), servers
pinned to CPU0 and the load to CPU1. HTTP/3 is measured on the edge only with
:mod:`bench.perf.h3load` (aioquic; Debian's h2load has no QUIC), ``-c10 -m10``: a Python
client, so it cannot saturate the server; requests per server CPU-second is the number to
compare. Reported per run: req/s, mean latency, server CPU, requests per server
CPU-second and that over nginx's in the same round. Writes
``bench/results/h2-<time>[-quick].{jsonl,md}``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.perf.procs import (
    Interrupted,
    Procs,
    first_output_line,
    install_signal_handlers,
    wait_tcp,
)
from bench.perf.proctree import cpu_seconds
from bench.perf.servers import ORIGIN_PORT, REPO, SIZES, Servers, _fill, edge_config
from cdn_core.pki import ensure_demo_pki

NGINX_PORT = 28191
EDGE_PORT = 28192  # plain HTTP/1.1, unused by the load: the edge needs one
EDGE_TLS_PORT = 28193  # TCP: HTTP/2 and HTTP/1.1 by ALPN; UDP: HTTP/3
EDGE_ADMIN_PORT = 29192
H2_CLIENTS, H2_STREAMS = 50, 10
H3_CLIENTS, H3_STREAMS = 10, 10
RESULTS = REPO / "bench" / "results"


def parse_h2load(out: str) -> dict[str, Any]:
    """The numbers of one h2load run (its text report).

    Raises:
        ValueError: the report lacks the summary lines (h2load failed).
    """
    fin = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    req = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored", out)
    lat = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+"
                    r"([\d.]+)(us|ms|s)", out)
    if not (fin and req and lat):
        raise ValueError(f"no h2load summary in: {out[-400:]}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": int(req.group(3)),
        "failed": int(req.group(4)) + int(req.group(5)),
        "rps": float(fin.group(3)),
        "mean_ms": round(float(lat.group(5)) * scale[lat.group(6)], 3),
    }


def measure(argv: list[str], server_pid: int, parse: Any, timeout: float) -> dict[str, Any]:
    """Run the load ``argv`` once; its numbers plus the server tree's CPU over the run."""
    c0, t0 = cpu_seconds(server_pid), time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    wall, cpu = time.monotonic() - t0, cpu_seconds(server_pid) - c0
    row = parse(p.stdout + p.stderr)
    row["server_cpu_s"] = round(cpu, 2)
    row["server_cores"] = round(cpu / wall, 2)
    row["req_per_cpu_s"] = round(row["requests"] / cpu) if cpu > 0 else None
    row["loadavg_1m"] = float(Path("/proc/loadavg").read_text().split()[0])
    return row


def _h3_parse(out: str) -> dict[str, Any]:
    line = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        r = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"no h3load result in: {out[-400:]}") from exc
    return {"requests": r["succeeded"], "failed": r["failed"],
            "rps": round(r["succeeded"] / r["seconds"], 1), "mean_ms": r["mean_ms"]}


class H2Bench:
    def __init__(self, run: Path, procs: Procs, *, pin: bool) -> None:
        self.run, self.procs, self.pin = run, procs, pin
        self.pki = ensure_demo_pki(run / "tls", ["www.example.test", "127.0.0.1"])
        self.servers = Servers(run, procs, pin=pin)
        self.pids: dict[str, int] = {}

    def _taskset(self, cpu: str, argv: list[str]) -> list[str]:
        return ["taskset", "-c", cpu, *argv] if self.pin else argv

    def start(self) -> None:
        self.servers.start_origin()
        root = self.run / "nginx-h2"
        for sub in ("logs", "cache", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "nginx.conf").write_text(_fill(
            "nginx-h2.conf", PORT=NGINX_PORT, ORIGIN_PORT=ORIGIN_PORT,
            CERT=self.pki["cert"], KEY=self.pki["key"]))
        proc = self.procs.start("nginx-h2", self._taskset("0", [
            "nginx", "-p", str(root), "-c", str(root / "nginx.conf"),
            "-e", str(root / "logs" / "error.log")]))
        wait_tcp(NGINX_PORT, proc)
        self.pids["nginx"] = proc.pid
        cfg_path = edge_config(self.run / "edge-h2.yaml")
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["tls"] = {**cfg.get("tls", {}), "http2": True, "http3": True}
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        proc = self.procs.start("edge-h2", self._taskset("0", [
            sys.executable, "-m", "edge", "--config", str(cfg_path),
            "--port", str(EDGE_PORT), "--admin-port", str(EDGE_ADMIN_PORT),
            "--tls-port", str(EDGE_TLS_PORT), "--tls-cert", str(self.pki["cert"]),
            "--tls-key", str(self.pki["key"]),
            "--upstream", f"http://127.0.0.1:{ORIGIN_PORT}", "--log-level", "WARNING"]),
            cwd=REPO)
        wait_tcp(EDGE_TLS_PORT, proc)
        self.pids["edge"] = proc.pid

    def warm(self, sizes: list[str]) -> None:
        for port in (NGINX_PORT, EDGE_TLS_PORT):
            for size in sizes:
                url = f"https://127.0.0.1:{port}/obj/{size}"
                p = subprocess.run(["h2load", "-n4", "-c1", url], capture_output=True,
                                   text=True, timeout=30)
                if parse_h2load(p.stdout)["failed"]:
                    raise RuntimeError(f"warming {url} failed:\n{p.stdout[-400:]}")

    def h2(self, server: str, size: str, duration: int) -> dict[str, Any]:
        port = NGINX_PORT if server == "nginx" else EDGE_TLS_PORT
        argv = self._taskset("1", ["h2load", f"-c{H2_CLIENTS}", f"-m{H2_STREAMS}",
                                   f"-D{duration}", f"https://127.0.0.1:{port}/obj/{size}"])
        return measure(argv, self.pids[server], parse_h2load, duration + 60)

    def h3(self, size: str, duration: int) -> dict[str, Any]:
        argv = self._taskset("1", [
            sys.executable, "-m", "bench.perf.h3load",
            f"https://www.example.test:{EDGE_TLS_PORT}/obj/{size}",
            "--connect", f"127.0.0.1:{EDGE_TLS_PORT}", "-c", str(H3_CLIENTS),
            "-m", str(H3_STREAMS), "-D", str(duration)])
        return measure(argv, self.pids["edge"], _h3_parse, duration + 60)


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Markdown tables: per size, each server's median over rounds and the per-round
    ratio of requests per server CPU-second to nginx's."""
    lines = [f"# HTTP/2 and HTTP/3 cache hits ({meta['started']})", "",
             f"`{meta['command']}`; {meta['versions']}", "",
             "| size | server | protocol | req/s | mean ms | server cores | req per CPU-s "
             "| vs nginx h2 (req per CPU-s, median of rounds) | failed |",
             "|---|---|---|---|---|---|---|---|---|"]

    def median(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else 0.0

    for size in meta["sizes"]:
        nginx_by_round = {r["round"]: r["req_per_cpu_s"] for r in rows
                          if r["size"] == size and r["server"] == "nginx"}
        for server, proto in (("nginx", "h2"), ("edge", "h2"), ("edge", "h3")):
            mine = [r for r in rows if (r["size"], r["server"], r["protocol"]) ==
                    (size, server, proto)]
            if not mine:
                continue
            ratios = [r["req_per_cpu_s"] / nginx_by_round[r["round"]] for r in mine
                      if r["req_per_cpu_s"] and nginx_by_round.get(r["round"])]
            lines.append(
                f"| {size} | {server} | {proto} | {median([r['rps'] for r in mine]):.0f} "
                f"| {median([r['mean_ms'] for r in mine]):.2f} "
                f"| {median([r['server_cores'] for r in mine]):.2f} "
                f"| {median([r['req_per_cpu_s'] or 0 for r in mine]):.0f} "
                f"| {median(ratios):.2f}x | {sum(r['failed'] for r in mine)} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run.sh h2", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 3 s runs")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 2)")
    ap.add_argument("--duration", type=int, help="seconds per run (default 8; quick 3)")
    ap.add_argument("--sizes", default="1k,100k", help="object sizes among 1k,100k,1m")
    ap.add_argument("--no-h3", action="store_true", help="skip the HTTP/3 runs")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--max-seconds", type=int, default=600)
    args = ap.parse_args(argv)
    args.sizes = [s for s in args.sizes.split(",") if s]
    bad = [s for s in args.sizes if s not in SIZES]
    if bad or not args.sizes:
        ap.error(f"--sizes: {','.join(bad) or 'none given'}; sizes are {','.join(SIZES)}")
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.duration = args.duration or (3 if args.quick else 8)
    if args.rounds < 1 or args.duration < 1 or args.max_seconds < 1:
        ap.error("--rounds, --duration and --max-seconds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    missing = [t for t in ("nginx", "h2load", "taskset") if shutil.which(t) is None]
    if missing:
        print(f"missing: {', '.join(missing)} (bench/setup.sh installs them)", file=sys.stderr)
        return 2
    install_signal_handlers(args.max_seconds)
    run = Path(tempfile.mkdtemp(prefix="cdn-bench-h2-"))
    procs = Procs(run)
    rows: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        bench = H2Bench(run, procs, pin=not args.no_pin)
        bench.start()
        bench.warm(args.sizes)
        for rnd in range(1, args.rounds + 1):
            for size in args.sizes:
                order = ["nginx", "edge"] if rnd % 2 else ["edge", "nginx"]
                for server in order:
                    row = bench.h2(server, size, args.duration)
                    rows.append({"round": rnd, "size": size, "server": server,
                                 "protocol": "h2", **row})
                    print(json.dumps(rows[-1]), flush=True)
                if not args.no_h3:
                    row = bench.h3(size, args.duration)
                    rows.append({"round": rnd, "size": size, "server": "edge",
                                 "protocol": "h3", **row})
                    print(json.dumps(rows[-1]), flush=True)
    except Interrupted as exc:
        print(f"interrupted ({exc}); nothing written", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(run, ignore_errors=True)
    versions = "; ".join(first_output_line(a) for a in (["nginx", "-v"], ["h2load", "--version"]))
    meta = {"started": started, "sizes": args.sizes, "versions": versions,
            "command": "python -m bench.perf.h2 " + " ".join(sys.argv[1:] if argv is None
                                                            else argv)}
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + ("-quick" if args.quick else "")
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"h2-{stamp}.jsonl", "w") as f:
        f.write(json.dumps({"meta": meta}) + "\n")
        for r in rows:
            f.write(json.dumps(r) + "\n")
    md = render(rows, meta)
    (out / f"h2-{stamp}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
