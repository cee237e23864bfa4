"""``python -m bench.dns [--quick]``: the router against PowerDNS, interleaved, with dnsperf.

Both serve zone ``example.test.`` with the same data (the router with its shipped
``configs/router.yaml`` and one healthy edge on 127.0.0.1, PowerDNS with the lua2
backend in ``conf/example.lua``): ``www`` A (the routed name, TTL 5), its AAAA (no data),
apex SOA and NS, ``ns1`` A, and an NXDOMAIN (``conf/queries.txt``). For each round and
server, ``dnsperf -c 1 -q 100 -l D`` over UDP; servers pinned to CPU0 and dnsperf to CPU1
(``--no-pin`` to turn off). Reported: queries/s, average latency, lost queries, server
CPU (whole process tree, /proc) and queries per server CPU-second, as ratios to PowerDNS
in the same round. Results: ``bench/results/dns-<time>.jsonl`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

from bench.perf.procs import Interrupted, Procs, install_signal_handlers, port_free, wait_tcp
from bench.perf.proctree import cpu_seconds
from bench.perf.report import fmt, spread
from bench.perf.servers import REPO

CONF = Path(__file__).parent / "conf"
RESULTS = REPO / "bench" / "results"
PORTS = {"pdns": 28255, "router": 28253}
EDGE_PORT, EDGE_ADMIN, ROUTER_ADMIN = 28283, 29283, 29253


def wait_dns(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode}")
        out = subprocess.run(
            [
                "dig",
                "+short",
                "+time=1",
                "+tries=1",
                "-p",
                str(port),
                "@127.0.0.1",
                "www.example.test",
                "A",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if out:
            return
        time.sleep(0.3)
    raise RuntimeError(f"no answer on port {port}")


def grab(pat: str, text: str) -> float | None:
    m = re.search(pat, text)
    return float(m.group(1)) if m else None


def dnsperf_once(name: str, port: int, pid: int, seconds: int, pin: bool) -> dict[str, Any]:
    argv = [
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(CONF / "queries.txt"),
        "-l",
        str(seconds),
        "-c",
        "1",
        "-q",
        "100",
        "-t",
        "2",
    ]
    if pin:
        argv = ["taskset", "-c", "1", *argv]
    c0 = cpu_seconds(pid)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_seconds(pid) - c0
    text = p.stdout + p.stderr
    completed = grab(r"Queries completed:\s+(\d+)", text)
    avg = grab(r"Average Latency \(s\):\s+([\d.]+)", text)
    return {
        "qps": grab(r"Queries per second:\s+([\d.]+)", text),
        "completed": completed,
        "lost": grab(r"Queries lost:\s+(\d+)", text),
        "avg_ms": round(avg * 1000, 3) if avg is not None else None,
        "server_cores": round(cpu / wall, 2),
        "q_per_cpu_s": round(completed / cpu) if cpu > 0 and completed else None,
        "dnsperf_cores": round(
            ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) / wall, 2
        ),
        "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0]),
    }


def table(rows: list[dict[str, Any]]) -> str:
    by = {(r["round"], r["target"]): r for r in rows}
    out = [
        "| server | qps | spread | avg latency ms | lost | srv cores | queries per srv CPU-s "
        "| spread | qps vs pdns | q/CPU-s vs pdns |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in ("pdns", "router"):
        rs = [r for r in rows if r["target"] == target and r.get("qps")]
        if not rs:
            continue
        cells = []
        for field in ("qps", "q_per_cpu_s"):
            vals = [
                r[field] / by[(r["round"], "pdns")][field]
                for r in rs
                if by.get((r["round"], "pdns"), {}).get(field)
            ]
            cells.append(f"{mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})" if vals else "-")
        eff = [r["q_per_cpu_s"] for r in rs if r["q_per_cpu_s"]]
        out.append(
            f"| {target}{' *' if rs[0]['pin'] else ''} | {fmt(mean(r['qps'] for r in rs))} | "
            f"{spread([r['qps'] for r in rs])} | {fmt(mean(r['avg_ms'] for r in rs), 3)} | "
            f"{sum(r['lost'] or 0 for r in rs):.0f} | "
            f"{fmt(mean(r['server_cores'] for r in rs), 2)} | {fmt(mean(eff) if eff else None)} | "
            f"{spread(eff)} | {' | '.join(cells)} |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/run.sh dns",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="3 s runs, 2 rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, help="seconds per dnsperf run (default 8)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--max-seconds", type=int, default=600)
    a = ap.parse_args(argv)
    for tool in ("dnsperf", "pdns_server", "dig", "taskset"):
        if shutil.which(tool) is None:
            print(f"missing {tool}; run bench/setup.sh (bench/run.sh does)", file=sys.stderr)
            return 2
    rounds = 2 if a.quick else a.rounds
    seconds = a.duration or (3 if a.quick else 8)
    pin = not a.no_pin
    results = Path(a.results)
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jsonl = results / f"dns-{stamp}{'-quick' if a.quick else ''}.jsonl"
    run_dir = Path(tempfile.mkdtemp(prefix="cdn-bench-dns-"))
    run_dir.chmod(0o755)
    install_signal_handlers(a.max_seconds)
    procs = Procs(run_dir)
    rows: list[dict[str, Any]] = []
    try:
        for port in (*PORTS.values(), EDGE_PORT, EDGE_ADMIN, ROUTER_ADMIN):
            if not port_free(port):
                raise RuntimeError(f"127.0.0.1:{port} is in use")
        # One healthy edge for the router to answer with (idle: only health probes).
        edge = procs.start(
            "edge",
            [
                sys.executable,
                "-m",
                "edge",
                "--port",
                str(EDGE_PORT),
                "--admin-port",
                str(EDGE_ADMIN),
                "--upstream",
                "http://127.0.0.1:9",
                "--log-level",
                "WARNING",
            ],
            cwd=REPO,
        )
        wait_tcp(EDGE_ADMIN, edge)
        cpu = "0" if pin else None
        pids = {}
        p = procs.start(
            "pdns",
            [
                "pdns_server",
                f"--config-dir={CONF}",
                f"--socket-dir={run_dir}",
                f"--lua2-filename={CONF / 'example.lua'}",
                "--local-address=127.0.0.1",
                f"--local-port={PORTS['pdns']}",
            ],
            cpu=cpu,
        )
        wait_dns(PORTS["pdns"], p)
        pids["pdns"] = p.pid
        p = procs.start(
            "router",
            [
                sys.executable,
                "-m",
                "router",
                "--config",
                str(REPO / "configs" / "router.yaml"),
                "--port",
                str(PORTS["router"]),
                "--admin-port",
                str(ROUTER_ADMIN),
                "--edge",
                f"e1=127.0.0.1:{EDGE_PORT}:{EDGE_ADMIN}",
                "--log-level",
                "WARNING",
            ],
            cpu=cpu,
            cwd=REPO,
        )
        wait_dns(PORTS["router"], p)
        pids["router"] = p.pid
        time.sleep(2)  # the router's health probes mark the edge up (rise: 2)
        with open(jsonl, "a") as f:
            f.write(
                json.dumps(
                    {
                        "kind": "meta",
                        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "command": "bench/run.sh dns " + " ".join(argv),
                        "rounds": rounds,
                        "duration": seconds,
                        "pin": pin,
                    }
                )
                + "\n"
            )
        order = ["pdns", "router"]
        for rnd in range(1, rounds + 1):
            for name in order if rnd % 2 else order[::-1]:
                r = {
                    "kind": "dns",
                    "target": name,
                    "round": rnd,
                    "pin": pin,
                    **dnsperf_once(name, PORTS[name], pids[name], seconds, pin),
                }
                rows.append(r)
                with open(jsonl, "a") as f:
                    f.write(json.dumps(r) + "\n")
                print(
                    f"  dns r{rnd} {name:<7} {r['qps'] or 0:>10,.0f} q/s  "
                    f"{r['q_per_cpu_s'] or 0:>9,} q/CPU-s  avg {r['avg_ms']} ms  "
                    f"lost {r['lost']}  srv {r['server_cores']} cores",
                    flush=True,
                )
    except Interrupted as exc:
        print(f"interrupted ({exc}); stopping everything", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    md = (
        f"dnsperf -c 1 -q 100 -l {seconds} (UDP), {rounds} interleaved rounds; `*` = "
        f"server pinned to CPU0, dnsperf to CPU1. `bench/run.sh dns {' '.join(argv)}`\n\n"
        + table(rows)
        + "\n"
    )
    jsonl.with_suffix(".md").write_text(md)
    print("\n" + md + f"\nresults: {jsonl}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Interrupted:
        sys.exit(130)
