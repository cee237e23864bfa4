"""Markdown tables from a run's JSONL records (``kind``: meta, hit, scale, miss, memory).

    python -m bench.perf.report bench/results/perf-*.jsonl

Hit table: per size and target, means over rounds of req/s, p50/p99 and requests per
server CPU-second, and the ratios to nginx and to Varnish *computed within each round*
(same size, same round: the two were measured a few seconds apart) and then averaged;
``spread`` is (max - min) / mean of a value over the rounds.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from statistics import mean
from typing import Any

SIZE_ORDER = ["1k", "100k", "1m"]
ANCHORS = ("nginx", "varnish")


def load(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    rows = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def fmt(x: float | None, nd: int = 0) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def spread(vals: list[float]) -> str:
    vals = [v for v in vals if v is not None]
    if len(vals) < 2 or not mean(vals):
        return "-"
    return f"{(max(vals) - min(vals)) / mean(vals) * 100:.0f}%"


def _torder(name: str) -> tuple[int, str]:
    order = {"nginx": 0, "varnish": 1, "edge": 2}
    return (order.get(name, 3), name)


def ratios(
    rows: list[dict[str, Any]],
    by: dict[tuple[str, int, str], dict[str, Any]],
    anchor: str,
    field: str,
) -> list[float]:
    out = []
    for r in rows:
        other = by.get((r["size"], r["round"], anchor))
        if other and other.get(field) and r.get(field):
            out.append(r[field] / other[field])
    return out


def _ratio_cell(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{mean(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})"


def hit_table(rows: list[dict[str, Any]]) -> str:
    rows = [r for r in rows if r.get("kind") == "hit" and "error" not in r]
    by = {(r["size"], r["round"], r["target"]): r for r in rows}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["size"], r["target"])].append(r)
    out = [
        "| size | server | req/s | spread | p50 ms | p99 ms | srv cores | req per srv CPU-s "
        "| spread | req/s vs nginx | vs varnish | req/CPU-s vs nginx | vs varnish "
        "| errors / origin fetches |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def keyf(kv: tuple[tuple[str, str], list[dict[str, Any]]]) -> tuple[int, tuple[int, str]]:
        size, target = kv[0]
        return (SIZE_ORDER.index(size) if size in SIZE_ORDER else 9, _torder(target))

    for (size, target), rs in sorted(groups.items(), key=keyf):
        rps = [r["rps"] for r in rs]
        eff = [r["req_per_cpu_s"] for r in rs if r.get("req_per_cpu_s")]
        cells = []
        for field in ("rps", "req_per_cpu_s"):
            for anchor in ANCHORS:
                cells.append(
                    "1" if target == anchor else _ratio_cell(ratios(rs, by, anchor, field))
                )
        out.append(
            f"| {size} | {target}{' *' if rs[0].get('pin') else ''} | {fmt(mean(rps))} | "
            f"{spread(rps)} | {fmt(mean(r['p50_ms'] for r in rs), 2)} | "
            f"{fmt(mean(r['p99_ms'] for r in rs), 2)} | "
            f"{fmt(mean(r['server_cores'] for r in rs), 2)} | {fmt(mean(eff) if eff else None)} | "
            f"{spread(eff)} | {' | '.join(cells)} | "
            f"{sum(r['errors'] + r['non2xx'] for r in rs)} / "
            f"{sum(r['origin_fetches'] for r in rs)} |"
        )
    return "\n".join(out)


def _by_target(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["target"]].append(r)
    return groups


def scale_table(rows: list[dict[str, Any]]) -> str:
    """Worker scaling: each edge's req/s and cores, and the N-worker edge's req/s over the
    single edge's within each round."""
    rows = [r for r in rows if r.get("kind") == "scale" and "error" not in r]
    if not rows:
        return ""
    single = {r["round"]: r for r in rows if r["workers"] == 1}
    groups = _by_target(rows)
    out = [
        "| server | workers | req/s (each round) | srv cores | wrk cores "
        "| req per srv CPU-s | req/s vs 1 process |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for target, rs in sorted(groups.items(), key=lambda kv: kv[1][0]["workers"]):
        vs = [r["rps"] / single[r["round"]]["rps"] for r in rs if r["round"] in single]
        out.append(
            f"| {target} | {rs[0]['workers']} | {fmt(mean(r['rps'] for r in rs))} "
            f"({' / '.join(fmt(r['rps']) for r in rs)}) | "
            f"{mean(r['server_cores'] for r in rs):.2f} | "
            f"{mean(r['wrk_cores'] for r in rs):.2f} | "
            f"{fmt(mean(r['req_per_cpu_s'] or 0 for r in rs))} | {_ratio_cell(vs)} |"
        )
    return "\n".join(out)


def miss_table(rows: list[dict[str, Any]]) -> str:
    rows = [r for r in rows if r.get("kind") == "miss"]
    if not rows:
        return ""
    groups = _by_target(rows)
    out = [
        "| server | rounds | requests / keys | req/s (each round) | wall s | p50 ms | p99 ms "
        "| origin fetches (each round) | srv CPU-s | non-200 / errors |",
        "|---|---:|---|---|---:|---:|---:|---|---:|---|",
    ]
    for target, rs in sorted(groups.items(), key=lambda kv: _torder(kv[0])):
        bad = sum(r["requests"] - r["ok"] for r in rs)
        errs = sum(sum(r["errors"].values()) for r in rs)
        out.append(
            f"| {target} | {len(rs)} | {rs[0]['requests']} / {rs[0]['keys']} | "
            f"{fmt(mean(r['rps'] or 0 for r in rs))} ({' / '.join(fmt(r['rps']) for r in rs)}) | "
            f"{fmt(mean(r['wall_s'] for r in rs), 3)} | {fmt(mean(r['p50_ms'] for r in rs), 1)} | "
            f"{fmt(mean(r['p99_ms'] for r in rs), 1)} | "
            f"{' / '.join(str(r['origin_fetches']) for r in rs)} | "
            f"{fmt(mean(r['server_cpu_s'] for r in rs), 2)} | {bad} / {errs} |"
        )
    return "\n".join(out)


def memory_table(rows: list[dict[str, Any]]) -> str:
    rows = [r for r in rows if r.get("kind") == "memory"]
    if not rows:
        return ""
    out = [
        "| server | object size | objects | cached body bytes | RSS before | RSS after "
        "| RSS growth per cached byte | overhead per object |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (_torder(r["target"]), r["object_bytes"])):
        out.append(
            f"| {r['target']} | {fmt(r['object_bytes'])} | {fmt(r['objects'])} | "
            f"{fmt(r['cached_bytes'])} | {r['rss_before'] / 2**20:,.1f} MiB | "
            f"{r['rss_after'] / 2**20:,.1f} MiB | {r['rss_per_cached_byte']:.2f} | "
            f"{fmt(r['overhead_per_object'])} B |"
        )
    return "\n".join(out)


def render(rows: list[dict[str, Any]]) -> str:
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    parts = []
    if meta:
        parts.append(
            f"Run {meta.get('started')} on {meta.get('cpus')} CPUs "
            f"(load average at start {meta.get('loadavg')}); `{meta.get('command')}`  \n"
            f"{meta.get('versions')}  \n"
            f"wrk -t1 -c{meta.get('wrk_conns')} -d{meta.get('duration')}s keep-alive, "
            f"{meta.get('rounds')} interleaved rounds; `*` = server pinned to CPU0 and wrk "
            "to CPU1; other servers unpinned."
        )
    if any(r.get("kind") == "hit" for r in rows):
        parts.append("### Cache hits\n\n" + hit_table(rows))
    scale = scale_table(rows)
    if scale:
        depth = next(r["pipeline"] for r in rows if r.get("kind") == "scale")
        parts.append(
            f"### Worker scaling: 1 KiB hits, {depth} pipelined requests per write, "
            "unpinned\n\n" + scale
        )
    miss = miss_table(rows)
    if miss:
        parts.append("### Miss path: 1,000 concurrent cold requests for 100 keys\n\n" + miss)
    mem = memory_table(rows)
    if mem:
        parts.append("### Memory\n\n" + mem)
    return "\n\n".join(parts) + "\n"


def main() -> None:
    sys.stdout.write(render(load(sys.argv[1:])))


if __name__ == "__main__":
    main()
