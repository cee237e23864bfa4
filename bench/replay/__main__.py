"""``python -m bench.replay``: the CDN traces of ``shared/data`` through whole CDNs (issue 23).

    python -m bench.replay [--trace socialmedia,download] [--requests 200000]
        [--cache 0.001,0.01,0.1] [--stacks ours,nginx,varnish] [--size-scale 0.1]
        [--clients 64] [--concurrency 32 | --rate REQ_PER_S] [--out DIR] [--check]

For each trace, cache size and stack, in that order: start the stack cold on a free
loopback network (:mod:`bench.replay.stacks`), replay the trace prefix through its
edges (clients of ours resolve the site through our DNS router, each with its own ECS
prefix), stop it, and record what the clients saw, what the origin served, the CPU
seconds and peak RSS of the CDN's processes. ``--out`` writes ``replay-<date>.json``,
``.md`` and ``.png`` (:mod:`bench.replay.report`). ``--check`` exits 1 when a run's
numbers are inconsistent (:func:`bench.replay.tally.problems`), as the CI smoke test
does with ``--requests 2000``.

Sizes are multiplied by ``--size-scale`` (default 0.1) and so are the cache budgets,
since they are fractions of the scaled catalogue: 200,000 requests of the SocialMedia
trace ask for 120 GB at full size, more than a 2-core machine moves in a bounded run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.hit_ratio.traces import REAL_TRACES, load_real
from bench.perf.proctree import cpu_seconds_of, rss_bytes_of
from bench.replay import report
from bench.replay.loadgen import Replayer
from bench.replay.stacks import NAMES, STACKS, process_label, shipped_defaults
from bench.replay.tally import OriginCounts, Tally, problems, summary
from bench.replay.workload import Workload, budgets, build, send_times
from cdn_core.store.policy import POLICIES

RESULTS = Path(__file__).resolve().parents[1] / "results"
RSS_EVERY = 0.5  # seconds between RSS samples


def _csv(kind: type, choices: tuple[str, ...] | None = None):  # type: ignore[no-untyped-def]
    def parse(text: str) -> list[Any]:
        values = [kind(v) for v in text.split(",") if v]
        if choices is not None:
            bad = [v for v in values if v not in choices]
            if bad:
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(bad)}; choose from {', '.join(choices)}")
        return values
    return parse


class Sampler:
    """Peak RSS of the processes ``pids()`` names and peak ``stored()`` bytes (every
    fourth sample: walking a cache directory costs CPU), sampled in a thread."""

    def __init__(self, pids, stored) -> None:  # type: ignore[no-untyped-def]
        self._pids = pids
        self._stored = stored
        self._n = 0
        self.peak = 0
        self.peak_stored: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(RSS_EVERY):
            self.sample()

    def sample(self) -> None:
        self.peak = max(self.peak, rss_bytes_of(self._pids()))
        self._n += 1
        if self._n % 4 == 1:
            stored = self._stored()
            if stored is not None:
                self.peak_stored = max(self.peak_stored or 0, stored)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def run_one(work: Workload, stack_name: str, fraction: float, args: argparse.Namespace,
            run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    edges, mids, edge_default, mid_default = shipped_defaults()
    b = budgets(work.distinct_bytes(), fraction, edges=edges, mids=mids,
                edge_default=edge_default, mid_default=mid_default)
    policies = {f: p for f, p in (("edge.yaml", args.edge_policy),
                                  ("mid_tier.yaml", args.mid_policy)) if p}
    stack = STACKS[stack_name](run_dir / f"{work.name}-{fraction:g}-{stack_name}", b, policies)
    try:
        stack.start()
        before = stack.origin_counts()
        cpu0 = {p: cpu_seconds_of([p]) for p in stack.cdn_pids()}
        replayer = Replayer(work, stack.edges(), site=stack.site, port=stack.edge_port)
        t0 = time.perf_counter()
        with Sampler(stack.cdn_pids, stack.stored_bytes) as rss:
            if args.rate:
                coro = replayer.open(send_times(work.times, args.rate), args.max_in_flight)
            else:
                coro = replayer.closed(args.concurrency)
            asyncio.run(coro)
        wall = time.perf_counter() - t0
        cpu1 = {p: cpu_seconds_of([p]) for p in stack.cdn_pids()}
        by_process: dict[str, float] = {}
        for p, c in cpu1.items():
            label = process_label(p)
            by_process[label] = round(by_process.get(label, 0.0) + c - cpu0.get(p, 0.0), 2)
        after = stack.origin_counts()
    finally:
        stack.stop()
    origin = OriginCounts(after.requests - before.requests, after.bytes - before.bytes)
    t: Tally = replayer.tally
    catalogue = OriginCounts(work.distinct_objects(), work.distinct_bytes())
    cpu = sum(by_process.values())
    row = summary(t, origin, wall=wall, cpu=cpu, peak_rss=rss.peak,
                  catalogue=catalogue)
    edge_bytes, mid_bytes = stack.node_bytes()
    row.update(trace=work.name, stack=stack_name, cache_fraction=fraction,
               budget_bytes=b.total, edge_bytes=edge_bytes, mid_bytes=mid_bytes,
               configured_bytes=edges * edge_bytes + mids * mid_bytes,
               cpu_by_process=dict(sorted(by_process.items())),
               peak_stored_bytes=rss.peak_stored, dns_queries=replayer.edges.queries,
               size_scale=work.size_scale, policies=policies,
               mode=f"open {args.rate}/s" if args.rate else f"closed c={args.concurrency}")
    if stack_name == "ours" and policies:
        # Another configuration than the shipped one: its own row label.
        row["stack"] = "ours " + " ".join(
            f"{f.split('.')[0].split('_')[0]}={p}" for f, p in policies.items())
    return row, problems(t, origin, planned=work.requests, planned_bytes=work.requested_bytes,
                         catalogue=catalogue)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replay",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--trace", type=_csv(str, tuple(REAL_TRACES)),
                    default=["socialmedia", "download"])
    ap.add_argument("--requests", type=int, default=200_000,
                    help="trace prefix replayed (2000000: the whole trace)")
    ap.add_argument("--cache", type=_csv(float), default=[0.001, 0.01, 0.1],
                    help="total cache bytes as fractions of the prefix's distinct bytes")
    ap.add_argument("--stacks", type=_csv(str, NAMES), default=list(NAMES))
    ap.add_argument("--edge-policy", choices=POLICIES, default=None,
                    help="ours: the edges' cache.policy (default: configs/edge.yaml's)")
    ap.add_argument("--mid-policy", choices=POLICIES, default=None,
                    help="ours: the mid tiers' cache.policy (default: configs/mid_tier.yaml's)")
    ap.add_argument("--size-scale", type=float, default=0.1)
    ap.add_argument("--clients", type=int, default=64, help="client population (ECS /24s)")
    ap.add_argument("--concurrency", type=int, default=32, help="closed loop: in flight")
    ap.add_argument("--rate", type=float, default=None,
                    help="open loop: mean requests per second (trace times scaled to it)")
    ap.add_argument("--max-in-flight", type=int, default=512, help="open loop cap")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"write replay-<date>.json/.md/.png here (e.g. {RESULTS})")
    ap.add_argument("--run-dir", type=Path, default=None,
                    help="keep configs, caches and logs here (default: a temporary directory)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when any run's numbers are inconsistent")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        ap.error("--requests and --concurrency must be at least 1")
    if args.rate is not None and args.rate <= 0:
        ap.error("--rate must be positive")
    rows: list[dict[str, Any]] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="cdn-replay-") as tmp:
        run_dir = args.run_dir or Path(tmp)
        for name in args.trace:
            work = build(load_real(name, args.requests), size_scale=args.size_scale,
                         clients=args.clients)
            for fraction in args.cache:
                for stack_name in args.stacks:
                    row, wrong = run_one(work, stack_name, fraction, args, run_dir)
                    rows.append(row)
                    print(report.line(row), flush=True)
                    for p in wrong:
                        failed = True
                        print(f"  inconsistent: {p}", flush=True)
    if args.out:
        stem = args.out / f"replay-{datetime.date.today():%Y%m%d}"
        args.out.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(
            {"argv": sys.argv[1:], "rows": rows}, indent=1))
        stem.with_suffix(".md").write_text(report.markdown(rows, sys.argv[1:]))
        report.plot(rows, stem.with_suffix(".png"))
        print(f"wrote {stem}.json, .md, .png")
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
