"""Profile the edge's hit path under wrk with py-spy.

    bench/run.sh profile [--sizes 1k,100k] [--duration 10] [--rate 200] [--svg]

Starts the nginx origin and one edge process (pinned to CPU0, wrk on CPU1), stores the
objects, then for each size runs wrk and, while it runs, ``py-spy record --nonblocking
--format raw`` on the edge's PID. Writes ``bench/results/profile-<date>.md``: where the
samples fall, grouped by stage of the hit path, then the top functions by self and by
inclusive share. Idle samples (the loop waiting in epoll) are not recorded, so shares are
of the time the edge was busy. ``--svg`` also records a flame graph per size (a second
py-spy pass) next to the report.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.perf import collapsed
from bench.perf.hit import WRK_CONNS
from bench.perf.phases import SIZE_PATH
from bench.perf.procs import Interrupted, Procs, install_signal_handlers
from bench.perf.servers import CONF, REPO, Servers, targets

RESULTS = REPO / "bench" / "results"

# Stage of the hit path for a leaf frame (function name or file), first match wins.
STAGES = [
    (
        "socket write (transport.write/writelines -> writev)",
        ("Http1Writer.respond", "Http1Writer.send", "Http1Writer.start"),
    ),
    ("event loop, socket read, llhttp (uvloop/httptools C code)", ("Runner.run", "run (")),
    ("request parsing callbacks (wire/http1.py)", ("http1.py",)),
    (
        "conditional requests + HTTP dates (http_cache/conditional, dates)",
        ("conditional.py", "dates.py", "calendar.py"),
    ),
    (
        "freshness decision (http_cache/decision, freshness, cache_control)",
        ("decision.py", "freshness.py", "cache_control.py", "age.py"),
    ),
    ("cache key + store lookup (keys, store/, vary)", ("keys.py", "store/", "vary.py")),
    ("response writing (proxy/delivery.py, wire/http1_writer.py)",
     ("delivery.py", "http1_writer.py")),
    ("proxy handler (proxy/handler.py)", ("handler.py",)),
    ("request gates (sanitize, ratelimit, signed)", ("sanitize.py", "ratelimit", "signed.py")),
    ("optimiser lookup (optimize/)", ("optimize/",)),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("dataclass construction", ("__create_fn__",)),
]


def stage_of(leaf: str) -> str:
    for name, needles in STAGES:
        if any(n in leaf for n in needles):
            return name
    return "other"


def stages(self_counts: Counter[str], total: int) -> str:
    by: Counter[str] = Counter()
    for fn, n in self_counts.items():
        by[stage_of(fn)] += n
    rows = ["| % of busy samples | stage (self time of the leaf frame) |", "|---:|---|"]
    for name, n in by.most_common():
        rows.append(f"| {100 * n / total:.1f} | {name} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/run.sh profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--sizes", default="1k,100k")
    ap.add_argument("--duration", type=int, default=10, help="seconds of sampling per size")
    ap.add_argument("--rate", type=int, default=200, help="samples per second")
    ap.add_argument("--svg", action="store_true", help="also record flame graphs (SVG)")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--max-seconds", type=int, default=600)
    a = ap.parse_args(argv)
    if shutil.which("py-spy") is None:
        print("py-spy is missing: pip install py-spy (bench/run.sh profile does)", file=sys.stderr)
        return 2
    results = Path(a.results)
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M")
    run_dir = Path(tempfile.mkdtemp(prefix="cdn-bench-prof-"))
    run_dir.chmod(0o755)
    install_signal_handlers(a.max_seconds)
    procs = Procs(run_dir)
    sections = []
    try:
        servers = Servers(run_dir, procs, pin=True)
        servers.start_origin()
        edge = next(t for t in targets(1) if t.kind == "edge")
        pid = servers.start(edge)
        sizes = [s for s in a.sizes.split(",") if s]
        servers.warm(edge, [SIZE_PATH[s] for s in sizes])
        for size in sizes:
            url = f"http://127.0.0.1:{edge.port}{SIZE_PATH[size]}"
            passes = [("raw", run_dir / f"profile-{size}.txt")]
            if a.svg:
                passes.append(("flamegraph", results / f"profile-{stamp}-{size}.svg"))
            for fmt, out in passes:
                wrk = subprocess.Popen(
                    [
                        "taskset",
                        "-c",
                        "1",
                        "wrk",
                        "-t1",
                        f"-c{WRK_CONNS}",
                        f"-d{a.duration + 3}s",
                        "-s",
                        str(CONF / "wrk-report.lua"),
                        url,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                try:
                    time.sleep(1)
                    subprocess.run(
                        [
                            "py-spy",
                            "record",
                            "--pid",
                            str(pid),
                            "--duration",
                            str(a.duration),
                            "--rate",
                            str(a.rate),
                            "--nonblocking",
                            "--format",
                            fmt,
                            "-o",
                            str(out),
                        ],
                        check=True,
                        capture_output=True,
                        timeout=a.duration + 60,
                    )
                    wrk_out, _ = wrk.communicate(timeout=a.duration + 30)
                finally:
                    if wrk.poll() is None:
                        wrk.kill()
                        wrk.wait()
                rps = next(
                    (
                        ln.split()[-1]
                        for ln in wrk_out.splitlines()
                        if ln.startswith("Requests/sec")
                    ),
                    "?",
                )
                if fmt != "raw":
                    continue
                total, self_c, incl, lines = collapsed.aggregate(out.read_text())
                sections.append(
                    f"## {size} hits ({total} busy samples at {a.rate} Hz over "
                    f"{a.duration} s; wrk saw {rps} req/s while sampled)\n\n"
                    f"### By stage\n\n{stages(self_c, total)}\n\n"
                    f"### Top functions, self\n\n{collapsed.table(self_c, total, a.top)}\n\n"
                    f"### Top functions, inclusive\n\n{collapsed.table(incl, total, a.top)}\n\n"
                    f"### Top lines, self\n\n{collapsed.table(lines, total, a.top)}\n"
                )
    except Interrupted as exc:
        print(f"interrupted ({exc}); stopping everything", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    out_md = results / f"profile-{stamp}.md"
    out_md.write_text(
        f"# Edge hit-path profile, {time.strftime('%Y-%m-%d %H:%M %Z')}\n\n"
        f"`bench/run.sh profile {' '.join(argv)}`: one edge process pinned to CPU0, "
        f"`wrk -t1 -c{WRK_CONNS}` on CPU1, `py-spy record --nonblocking --rate {a.rate}`. "
        "Shares are of busy samples (idle epoll waits are not sampled). C code (uvloop, "
        "llhttp, the kernel's send path) shows as the Python frame that called it.\n\n"
        + "\n".join(sections)
    )
    print(out_md.read_text())
    print(f"written {out_md}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Interrupted:
        sys.exit(130)
