"""Tables and the plot of a replay: one row per (trace, cache size, stack), with our
numbers as ratios to nginx two-tier's in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MiB = 1024 * 1024
COLUMNS = (
    ("edge OHR", "edge_ohr", "{:.4f}"),
    ("edge BHR", "edge_bhr", "{:.4f}"),
    ("CDN OHR", "cdn_ohr", "{:.4f}"),
    ("CDN BHR", "cdn_bhr", "{:.4f}"),
    ("origin req/req", "origin_requests_per_request", "{:.4f}"),
    ("origin KB/req", "origin_bytes_per_request", "{:.2f}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("req/CPU-s", "requests_per_cpu_s", "{:.0f}"),
    ("peak RSS MiB", "peak_rss_bytes", "{:.0f}"),
)


def _value(row: dict[str, Any], key: str) -> float:
    v = float(row[key])
    if key == "origin_bytes_per_request":
        return v / 1000
    if key == "peak_rss_bytes":
        return v / MiB
    return v


def line(row: dict[str, Any]) -> str:
    """One run on one line, for the console."""
    cells = " ".join(f"{label}={fmt.format(_value(row, key))}" for label, key, fmt in COLUMNS)
    errors = f" errors={row['errors']}" if row["errors"] else ""
    return (f"{row['trace']} cache={row['cache_fraction']:g} {row['stack']}: {cells}"
            f" held/budget={held(row)} wall={row['wall_s']:.1f}s{errors}")


def held(row: dict[str, Any]) -> str:
    """Bytes the caches could hold against the budget: the configured total where a
    node cannot be made as small as its share (varnishd's 1 MiB least), the peak stored
    where the budget is not enforced as objects are stored (nginx), else "1x"."""
    budget = max(1, row["budget_bytes"])
    most = max(row.get("peak_stored_bytes") or 0, row.get("configured_bytes") or 0)
    ratio = most / budget
    return "1x" if ratio < 1.05 else f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def markdown(rows: list[dict[str, Any]], argv: list[str]) -> str:
    """The results table, then ours / nginx ratios where both ran."""
    out = [f"# Trace replay through whole CDNs\n\n`python -m bench.replay {' '.join(argv)}`\n"]
    head = ["trace", "cache", "stack", *(c[0] for c in COLUMNS), "held/budget", "errors"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * 3 + "---:|" * (len(COLUMNS) + 1) + "---|")
    for r in rows:
        cells = [fmt.format(_value(r, key)) for _, key, fmt in COLUMNS]
        out.append(f"| {r['trace']} | {r['cache_fraction']:.1%} | {r['stack']} | "
                   + " | ".join(cells) + f" | {held(r)} | {sum(r['errors'].values()) or ''} |")
    ratios = ratio_rows(rows)
    if ratios:
        out.append("\nOurs against nginx two-tier (ours / nginx; for origin traffic and "
                   "latency lower is better):\n")
        keys = ("cdn_ohr", "cdn_bhr", "origin_bytes_per_request", "p99_ms",
                "requests_per_cpu_s")
        out.append("| trace | cache | " + " | ".join(keys) + " |")
        out.append("|---|---|" + "---:|" * len(keys))
        for (trace, frac), r in ratios.items():
            out.append(f"| {trace} | {frac:.1%} | "
                       + " | ".join(f"{r[k]:.2f}x" for k in keys) + " |")
    bounds = {(r["trace"], r["cache_fraction"]): r for r in rows if "ohr_bound" in r}
    if bounds:
        out.append("\nThe most any cache could hit from cold (each distinct object missed "
                   "once): " + "; ".join(
                       f"{trace} {frac:.1%}: OHR {r['ohr_bound']:.4f}, BHR {r['bhr_bound']:.4f}"
                       for (trace, frac), r in bounds.items()) + ".")
    first = rows[0] if rows else {}
    out.append(f"\nSizes scaled by {first.get('size_scale')}; mode {first.get('mode')}; "
               "cache budgets split between edges and mid tiers as the shipped defaults "
               "(3 x 256 MiB : 2 x 1 GiB).")
    return "\n".join(out) + "\n"


def ratio_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, float]]:
    """``(trace, fraction) -> {key: ours / nginx}`` for every cell where both ran."""
    by = {(r["trace"], r["cache_fraction"], r["stack"]): r for r in rows}
    out = {}
    for (trace, frac, stack), ours in by.items():
        peer = by.get((trace, frac, "nginx"))
        if stack != "ours" or peer is None:
            continue
        out[(trace, frac)] = {
            k: (float(ours[k]) / float(peer[k]) if float(peer[k]) else float("nan"))
            for k in ("cdn_ohr", "cdn_bhr", "origin_bytes_per_request", "p99_ms",
                      "requests_per_cpu_s")
        }
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """A PNG: per trace, CDN object and byte hit ratio and origin bytes per request for
    each cache size and stack (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traces = list(dict.fromkeys(r["trace"] for r in rows))
    stacks = list(dict.fromkeys(r["stack"] for r in rows))
    fracs = sorted({r["cache_fraction"] for r in rows})
    by = {(r["trace"], r["cache_fraction"], r["stack"]): r for r in rows}
    panels = (("CDN object hit ratio", "cdn_ohr"), ("CDN byte hit ratio", "cdn_bhr"),
              ("origin KB per request", "origin_bytes_per_request"))
    fig, axes = plt.subplots(len(traces), len(panels), figsize=(4.2 * len(panels),
                             3.2 * len(traces)), squeeze=False)
    width = 0.8 / max(1, len(stacks))
    for ti, trace in enumerate(traces):
        for pi, (title, key) in enumerate(panels):
            ax = axes[ti][pi]
            for si, stack in enumerate(stacks):
                xs, ys, notes = [], [], []
                for fi, frac in enumerate(fracs):
                    r = by.get((trace, frac, stack))
                    if r is not None:
                        xs.append(fi + (si - (len(stacks) - 1) / 2) * width)
                        ys.append(_value(r, key))
                        notes.append(held(r))
                ax.bar(xs, ys, width, label=stack)
                # A stack that held more than the budget gets it written on its bar.
                for x, y, note in zip(xs, ys, notes, strict=True):
                    if note != "1x":
                        ax.annotate(note, (x, y), ha="center", va="bottom", fontsize=6)
            ax.set_xticks(range(len(fracs)), [f"{f:.1%}" for f in fracs])
            ax.set_title(f"{trace}: {title}", fontsize=9)
            ax.set_xlabel("cache size (of distinct bytes)", fontsize=8)
            if ti == 0 and pi == 0:
                ax.legend(fontsize=8)
    fig.suptitle("numbers over bars: bytes the stack held against the budget", fontsize=8,
                 y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
