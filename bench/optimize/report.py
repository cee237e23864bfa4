"""The optimisation bench's report: tables of bytes, codings and CPU, the README section."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.optimize.profiles import MEDIA, PROFILES, Served, Totals
from bench.perf.servers import REPO
from cdn_core.optimize.settings import OptimizeSettings


def _totals(
    results: dict[tuple[str, str, str], Served], server: str, prof: str, text_only: bool = False
) -> Totals:
    t = Totals()
    for (srv, p, target), s in results.items():
        if text_only and Path(target).suffix.lower() in MEDIA:
            continue
        if srv == server and p == prof:
            t.body += s.body
            t.wire += s.wire
            if s.psnr is not None:
                t.psnr.append(s.psnr)
    return t


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "-"


def text_table(results: dict[tuple[str, str, str], Served], with_nginx: bool) -> list[str]:
    """Body bytes of the files that are not images (HTML, CSS, JS, text)."""
    lines = [
        "| client profile | edge body bytes | nginx body bytes | edge / nginx |",
        "|---|---:|---:|---:|",
    ]
    for prof in PROFILES[:3]:
        e = _totals(results, "edge", prof.name, True)
        n = _totals(results, "nginx", prof.name, True) if with_nginx else Totals()
        lines.append(f"| {prof.title} | {e.body:,} | {n.body:,} | {_ratio(e.body, n.body)} |")
    return lines


def bytes_table(results: dict[tuple[str, str, str], Served], with_nginx: bool) -> list[str]:
    identity = _totals(results, "edge", "none").body
    lines = [
        "| client profile | edge body bytes | nginx body bytes | edge / nginx | edge vs identity "
        "| edge wire bytes | nginx wire bytes | wire edge / nginx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for prof in PROFILES:
        e = _totals(results, "edge", prof.name)
        n = _totals(results, "nginx", prof.name) if with_nginx else Totals()
        lines.append(
            f"| {prof.title} | {e.body:,} | {n.body:,} | {_ratio(e.body, n.body)} | "
            f"{(e.body - identity) / identity:+.1%} | {e.wire:,} | {n.wire:,} | "
            f"{_ratio(e.wire, n.wire)} |"
        )
    return lines


def cpu_table(m: dict[tuple[str, ...], float]) -> list[str]:
    kinds = sorted({k[1] for k in m if k[0] == "cdn_optimize_cpu_seconds_total"})
    lines = [
        "| variant kind | encodes | kept | discarded (not smaller) | bytes in | bytes out "
        "| out / in | CPU s | CPU ms per MB in |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in kinds:
        cpu = m.get(("cdn_optimize_cpu_seconds_total", k, ""), 0.0)
        bin_ = m.get(("cdn_optimize_bytes_in_total", k, ""), 0.0)
        bout = m.get(("cdn_optimize_bytes_out_total", k, ""), 0.0)
        ok = m.get(("cdn_optimize_transforms_total", k, "ok"), 0.0)
        larger = m.get(("cdn_optimize_transforms_total", k, "larger"), 0.0)
        n = sum(
            v for key, v in m.items() if key[0] == "cdn_optimize_transforms_total" and key[1] == k
        )
        lines.append(
            f"| {k} | {n:.0f} | {ok:.0f} | {larger:.0f} | {bin_:,.0f} | {bout:,.0f} | "
            f"{bout / bin_ if bin_ else 0:.3f} | {cpu:.3f} | "
            f"{cpu * 1e3 / (bin_ / 1e6) if bin_ else 0:.0f} |"
        )
    other = {
        key: v
        for key, v in m.items()
        if key[0] == "cdn_optimize_transforms_total" and key[2] not in ("ok", "larger")
    }
    if other:
        lines.append("")
        lines.append(
            "Other outcomes: " + ", ".join(f"{k[1]} {k[2]}: {v:.0f}" for k, v in other.items())
        )
    return lines


def files_table(
    files: list[tuple[str, bytes, str]],
    results: dict[tuple[str, str, str], Served],
    with_nginx: bool,
) -> list[str]:
    head = "| file | size | " + " | ".join(f"edge: {p.title}" for p in PROFILES)
    head += " | nginx: gzip only |" if with_nginx else " |"
    lines = [head, "|---|---:|" + "---:|" * (len(PROFILES) + (1 if with_nginx else 0))]
    for target, orig, _ in files:
        cells = []
        for p in PROFILES:
            s = results[("edge", p.name, target)]
            cells.append(f"{s.body:,} {s.label}" + (f" ({s.psnr:.1f} dB)" if s.psnr else ""))
        if with_nginx:
            s = results[("nginx", "gzip", target)]
            cells.append(f"{s.body:,} {s.label}")
        lines.append(f"| `{target}` | {len(orig):,} | " + " | ".join(cells) + " |")
    return lines


def settings_line(s: OptimizeSettings) -> str:
    c, i = s.compression, s.images
    return (
        f"edge `configs/edge.yaml`: codings {c.codings}, brotli level {c.brotli_level} "
        f"(level {c.brotli_level_large} from {c.large_bytes:,} B), gzip level {c.gzip_level}, "
        f"min {c.min_bytes:,} B; images {i.formats if i.enabled else 'off'} (AVIF quality "
        f"{i.avif_quality} speed {i.avif_speed}, WebP quality {i.webp_quality} method "
        f"{i.webp_method}), {s.pool.workers} encoder threads"
    )


def render(
    *,
    files: list[tuple[str, bytes, str]],
    results: dict[tuple[str, str, str], Served],
    settings: OptimizeSettings,
    warm_metrics: dict[tuple[str, ...], float],
    warm_requests: int,
    warm_wall: float,
    edge_cpu: float,
    conditional: int,
    problems: list[str],
    nginx_cpu: tuple[float, int] | None,
    versions: str,
    elapsed: float,
    with_nginx: bool,
) -> str:
    total = sum(len(o) for _, o, _ in files)
    n_resp = len(results)
    psnrs = [s.psnr for s in results.values() if s.psnr is not None]
    encode_cpu = sum(v for k, v in warm_metrics.items() if k[0] == "cdn_optimize_cpu_seconds_total")
    out = [
        "# Content optimisation: bytes served for the example site "
        f"({dt.datetime.now():%Y-%m-%d %H:%M})",
        "",
        "`python -m bench.optimize`. Every file of `examples/site/` "
        f"({len(files)} files, {total:,} bytes) fetched once per client profile from a warmed "
        "edge and from nginx serving the same directory with `gzip on; gzip_comp_level 6; "
        "gzip_min_length 1024;` and the same media types. Body bytes are the payload as sent "
        "(content coding applied, transfer coding removed); wire bytes add the status line, "
        "header fields and chunk framing.",
        "",
        f"Setup: {settings_line(settings)}. nginx has no brotli module and no image "
        f"conversion, so it sends gzip to the br and image profiles and the original images. "
        f"Versions: {versions}.",
        "",
        "## Bytes per client profile",
        "",
        "Profiles: no compression = no `Accept-Encoding`; gzip only = `gzip`; br+gzip = "
        "`gzip, deflate, br`; image-capable browser = `br, gzip` and "
        "`Accept: image/avif,image/webp,*/*`. All send `Accept: */*` unless stated.",
        "",
        *bytes_table(results, with_nginx),
        "",
        "Text files only (everything but the images; the other two profiles get the same "
        "text as br+gzip):",
        "",
        *text_table(results, with_nginx),
        "",
        "## CPU per variant kind (edge, one-off: made once per object, then cached)",
        "",
        f"From the edge's `/metrics` over the warm-up ({warm_requests} requests, "
        f"{warm_wall:.1f} s wall; the edge process used {edge_cpu:.2f} CPU s in all, "
        f"{encode_cpu:.3f} s of it in encoders). CPU s is encoder-thread time "
        "(`cdn_optimize_cpu_seconds_total`).",
        "",
        *cpu_table(warm_metrics),
        "",
    ]
    if nginx_cpu is not None:
        sec, n = nginx_cpu
        out += [
            f"nginx compresses on every response instead: zlib level 6 on the {n} bodies it "
            f"gzipped costs about {sec * 1e3:.2f} ms CPU per pass of the site (measured "
            "in-process, an estimate of nginx's gzip work), paid again for every "
            "gzip-accepting client.",
            "",
        ]
    out += [
        "## Per file (edge body bytes and representation per profile)",
        "",
        *files_table(files, results, with_nginx),
        "",
        "## Correctness",
        "",
        f"- {n_resp} measured answers checked: coding accepted by the profile, decoded body "
        "equal to the file byte for byte (text; images in their own format), AVIF/WebP only "
        "when named in `Accept`, same dimensions as the original and smaller"
        + (f" (PSNR {min(psnrs):.1f}-{max(psnrs):.1f} dB against the original)" if psnrs else "")
        + ".",
        "- Edge: every measured answer a cache hit, no encoder run after the warm-up, "
        f"{conditional} conditional requests with the variant's `ETag` expected to give 304.",
        f"- Problems found: {len(problems)}" + ("" if problems else " (none)."),
    ]
    out += [f"  - {p}" for p in problems[:50]]
    if len(problems) > 50:
        out.append(f"  - ... and {len(problems) - 50} more")
    out += ["", f"Run time {elapsed:.1f} s.", ""]
    return "\n".join(out)


def readme_section(
    results: dict[tuple[str, str, str], Served],
    settings: OptimizeSettings,
    warm_metrics: dict[tuple[str, ...], float],
    problems: list[str],
    out: Path,
    with_nginx: bool,
) -> str:
    lines = [
        "### Content optimisation: bytes served (example site)",
        "",
        f"`python -m bench.optimize` ({dt.date.today():%Y-%m-%d}; full report "
        f"`{out.relative_to(REPO)}`). Every file of `examples/site/` once per client "
        "profile, from a warmed edge and from nginx (static, `gzip_comp_level 6`, same "
        "types, `gzip_min_length 1024`); body bytes as sent, every body verified against "
        "the file.",
        "",
        *bytes_table(results, with_nginx),
        "",
        "Text files only (HTML, CSS, JS, text):",
        "",
        *text_table(results, with_nginx),
        "",
        "Encoder CPU at the edge (once per object, then cached):",
        "",
        *cpu_table(warm_metrics),
        "",
        f"{settings_line(settings)}. Correctness problems: {len(problems)}.",
        "",
    ]
    return "\n".join(lines)
