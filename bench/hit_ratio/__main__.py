"""Replay traces through our policies and libCacheSim's; print hit ratios side by side.

    python -m bench.hit_ratio                 # everything: 3 Zipf traces, 2 CDN traces
    python -m bench.hit_ratio --quick         # 200k-request prefixes, a smoke run
    python -m bench.hit_ratio --traces zipf-1.0,download --requests 500000

Capacities are fractions of the catalogue: for Zipf traces the object population (unit
sizes, capacity in objects), for the CDN traces the bytes of the distinct objects
requested (as in shared/data/README.md). Each cell is a fresh cache replaying the trace
once, cold. Our policies go through ``Policy.access`` (the code MemoryStore runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.hit_ratio.replay import LCS_POLICIES, Result, replay_libcachesim, replay_ours
from bench.hit_ratio.traces import REAL_TRACES, Trace, load_real, zipf
from cdn_core.store.policy import POLICIES

FRACTIONS = (0.001, 0.01, 0.1)
ZIPF_ALPHAS = (0.6, 0.8, 1.0)
LABEL = {"lru": "LRU", "wtinylfu": "W-TinyLFU", "s3fifo": "S3-FIFO", "sizesplit": "size split"}


def run_trace(trace: Trace, catalogue: int, csv_dir: Path, use_lcs: bool) -> list[str]:
    csv = trace.write_csv(csv_dir / f"{trace.name}.csv") if use_lcs else None
    lines = []
    for frac in FRACTIONS:
        cap = max(1, int(frac * catalogue))
        ours = {p: replay_ours(p, trace, cap) for p in POLICIES}
        theirs: dict[str, Result | None] = {}
        for p in LCS_POLICIES:
            theirs[p] = replay_libcachesim(p, csv, cap) if csv is not None else None
        best = max((r.hit_ratio for r in theirs.values() if r is not None), default=None)
        w = ours["wtinylfu"].hit_ratio
        cells = [f"{trace.name}", f"{frac:.1%}"]
        cells += [f"{ours[p].hit_ratio:.4f}" for p in POLICIES]
        cells += [f"{r.hit_ratio:.4f}" if r else "n/a" for r in theirs.values()]
        cells += [f"{ours[p].byte_hit_ratio:.4f}" for p in POLICIES]
        cells += [f"{r.byte_hit_ratio:.4f}" if r else "n/a" for r in theirs.values()]
        cells.append(f"{100 * (w - ours['lru'].hit_ratio):+.1f}")
        cells.append(f"{100 * (w - best):+.2f}" if best is not None else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def header() -> list[str]:
    ours = [f"our {LABEL[p]}" for p in POLICIES]
    lcs = [f"lcs {LABEL[p]}" for p in LCS_POLICIES]
    cols = ["trace", "cache"]
    cols += [f"OHR {c}" for c in ours + lcs] + [f"BHR {c}" for c in ours + lcs]
    cols += ["W-TinyLFU - our LRU (pts)", "W-TinyLFU - best lcs (pts)"]
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * 2 + "---:|" * (len(cols) - 2)]


def main() -> None:
    ap = argparse.ArgumentParser(description="hit-ratio benchmark (see module docstring)")
    names = [f"zipf-{a:.1f}" for a in ZIPF_ALPHAS] + list(REAL_TRACES)
    ap.add_argument("--traces", default=",".join(names), help=f"from {', '.join(names)}")
    ap.add_argument("--requests", type=int, help="replay only this many requests of each")
    ap.add_argument("--zipf-objects", type=int, default=100_000)
    ap.add_argument("--zipf-requests", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="200k-request prefixes")
    ap.add_argument("--no-libcachesim", action="store_true")
    args = ap.parse_args()
    limit = 200_000 if args.quick and not args.requests else args.requests
    try:
        import libcachesim  # noqa: F401

        use_lcs = not args.no_libcachesim
    except ImportError:
        print("libcachesim not installed (pip install -e '.[bench]'): ours only", file=sys.stderr)
        use_lcs = False
    out = header()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hit-ratio-") as tmp:
        for name in args.traces.split(","):
            if name.startswith("zipf-"):
                n = min(limit or args.zipf_requests, args.zipf_requests)
                trace = zipf(float(name[5:]), args.zipf_objects, n)
                trace.name = name
                catalogue = args.zipf_objects
            else:
                trace = load_real(name, limit)
                catalogue = trace.footprint()[1]
            print(f"{name}: {trace.requests} requests", file=sys.stderr, flush=True)
            out += run_trace(trace, catalogue, Path(tmp), use_lcs)
    print("\n".join(out))
    print(f"\n({time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
