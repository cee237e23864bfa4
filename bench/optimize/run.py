"""``python -m bench.optimize``: bytes the edge serves for the example site, per client
profile, against nginx with gzip level 6, and the CPU the edge spent making variants.

What runs (all on 127.0.0.1, free ports picked at start, state in a fresh
``/tmp/cdn-bench-optimize-*`` removed at the end):

- the origin, ``python -m origin --root examples/site``;
- one edge, ``python -m edge --config configs/edge.yaml`` in front of it (the
  ``optimize:`` section as committed: br level 11, gzip level 6, AVIF/WebP);
- nginx as a plain static server of the same directory with ``gzip on;
  gzip_comp_level 6; gzip_min_length 1024;`` and ``gzip_types`` set to the media types
  the edge compresses (``conf/nginx-static.conf``).

Then:

1. **Warm**: every file of the site is fetched through the edge once per client profile,
   repeated until two answers in a row agree (a variant is made on the first request
   for it), so every variant exists.
2. **Measure**: every file is fetched once per profile from the edge and from nginx.
   Bytes are counted as they cross the wire (:mod:`bench.optimize.http1`). Each body is
   checked: the content coding must be one the profile accepts, the decoded text must
   equal the file byte for byte, an image in its own format must equal the file, and an
   AVIF/WebP image must be one the profile named in ``Accept`` and decode to the same
   dimensions (its PSNR against the original is reported; lossy by design). On the edge
   every answer must be a cache hit and no encoder may run again.
3. **Conditional**: every edge answer is asked again with its ``ETag`` in
   ``If-None-Match`` (same profile): it must be ``304``; variant tags of one file must
   differ from each other.
4. CPU per variant kind comes from the edge's ``/metrics``
   (``cdn_optimize_cpu_seconds_total``, bytes in/out, transforms by result;
   :mod:`cdn_core.optimize.metrics`). nginx compresses on every response instead; its
   cost is estimated in-process as zlib level 6 on the bodies nginx gzipped.

Writes ``bench/results/optimize-<date>.md`` and ``bench/optimize/RESULTS.md`` (the README
section), prints the report. Exits 1 when a correctness check failed. Bounded by
``--max-seconds`` (default 170); every process started is stopped by PID on exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import brotli
import PIL
import yaml
from PIL import Image, ImageChops, ImageOps, ImageStat
from prometheus_client.parser import text_string_to_metric_families

from bench.optimize.http1 import Response, fetch
from bench.perf.procs import Interrupted, Procs, install_signal_handlers, wait_tcp
from bench.perf.proctree import cpu_seconds
from cdn_core.optimize.settings import OptimizeSettings

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "examples" / "site"
EDGE_CONFIG = REPO / "configs" / "edge.yaml"
RESULTS = REPO / "bench" / "results"
README_SECTION = Path(__file__).resolve().parent / "RESULTS.md"
NGINX_CONF = Path(__file__).resolve().parent / "conf" / "nginx-static.conf"


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    headers: dict[str, str]
    codings: frozenset[str]  # content codings it accepts
    image_types: frozenset[str]  # image types it names in Accept


PROFILES = (
    Profile("none", "no compression", {"Accept": "*/*"}, frozenset(), frozenset()),
    Profile(
        "gzip",
        "gzip only",
        {"Accept": "*/*", "Accept-Encoding": "gzip"},
        frozenset({"gzip"}),
        frozenset(),
    ),
    Profile(
        "br",
        "br+gzip",
        {"Accept": "*/*", "Accept-Encoding": "gzip, deflate, br"},
        frozenset({"gzip", "deflate", "br"}),
        frozenset(),
    ),
    Profile(
        "img",
        "image-capable browser",
        {"Accept": "image/avif,image/webp,*/*", "Accept-Encoding": "br, gzip"},
        frozenset({"br", "gzip"}),
        frozenset({"image/avif", "image/webp"}),
    ),
    # Not one of the four of issue 6: a browser with WebP but no AVIF (Safari before 16,
    # older Chrome), so that WebP encodes are measured too.
    Profile(
        "webp",
        "(extra) WebP-only browser",
        {"Accept": "image/webp,*/*", "Accept-Encoding": "gzip, deflate, br"},
        frozenset({"gzip", "deflate", "br"}),
        frozenset({"image/webp"}),
    ),
)

# nginx's gzip_types cannot take "text/*"; the edge's patterns are expanded to the
# concrete types nginx labels files with (text/html is always compressed by nginx).
NGINX_EXTRA_TYPES = ("text/css", "text/plain", "text/javascript", "text/xml", "text/csv")
MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif"}


@dataclass
class Served:
    """One measured answer."""

    status: int
    body: int
    wire: int
    label: str  # identity | br | gzip | avif | webp | jpeg ...
    etag: str = ""
    cache_status: str = ""
    psnr: float | None = None


@dataclass
class Totals:
    body: int = 0
    wire: int = 0
    psnr: list[float] = field(default_factory=list)


# Processes ----------------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def ensure_nginx() -> str:
    path = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if path:
        return path
    if os.geteuid() != 0:
        raise SystemExit("nginx is missing; install it: apt-get install -y nginx")
    print("installing nginx (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=120)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=True, env=env, timeout=300)
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    return path


def nginx_gzip_types(settings: OptimizeSettings) -> str:
    types = [t for t in settings.compression.types if "*" not in t]
    types += [t for t in NGINX_EXTRA_TYPES if t not in types]
    return " ".join(t for t in types if t != "text/html")


def start_servers(
    procs: Procs, run: Path, settings: OptimizeSettings, with_nginx: bool
) -> dict[str, int]:
    origin, origin_admin, edge, edge_admin, nginx = free_ports(5)
    py = sys.executable
    p = procs.start(
        "origin",
        [
            py,
            "-m",
            "origin",
            "--port",
            str(origin),
            "--admin-port",
            str(origin_admin),
            "--root",
            str(SITE),
            "--log-level",
            "WARNING",
        ],
        cwd=REPO,
    )
    wait_tcp(origin, p)
    p = procs.start(
        "edge",
        [
            py,
            "-m",
            "edge",
            "--config",
            str(EDGE_CONFIG),
            "--name",
            "edge-bench",
            "--port",
            str(edge),
            "--admin-port",
            str(edge_admin),
            "--upstream",
            f"http://127.0.0.1:{origin}",
            "--log-level",
            "WARNING",
        ],
        cwd=REPO,
    )
    wait_tcp(edge, p)
    wait_tcp(edge_admin, p)
    ports = {"origin": origin, "edge": edge, "edge_admin": edge_admin}
    if with_nginx:
        binary = ensure_nginx()
        root = run / "nginx"
        for d in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (root / d).mkdir(parents=True, exist_ok=True)
        conf = (
            NGINX_CONF.read_text()
            .replace("@PORT@", str(nginx))
            .replace("@ROOT@", str(SITE))
            .replace("@GZIP_TYPES@", nginx_gzip_types(settings))
        )
        (root / "nginx.conf").write_text(conf)
        p = procs.start(
            "nginx",
            [
                binary,
                "-p",
                str(root),
                "-c",
                str(root / "nginx.conf"),
                "-e",
                str(root / "error.log"),
            ],
        )
        wait_tcp(nginx, p)
        ports["nginx"] = nginx
    return ports


# Metrics ------------------------------------------------------------------------------------


def optimize_metrics(admin_port: int) -> dict[tuple[str, ...], float]:
    """``(metric, kind[, result]) -> value`` of the cdn_optimize_* counters."""
    r = fetch(admin_port, "/metrics")
    if r.status != 200:
        raise RuntimeError(f"edge /metrics answered {r.status}")
    out: dict[tuple[str, ...], float] = {}
    for fam in text_string_to_metric_families(r.body.decode()):
        if not fam.name.startswith("cdn_optimize_"):
            continue
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            key = (s.name, s.labels.get("kind", ""), s.labels.get("result", ""))
            out[key] = out.get(key, 0.0) + s.value
    return out


def delta(
    after: dict[tuple[str, ...], float], before: dict[tuple[str, ...], float]
) -> dict[tuple[str, ...], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


# Checking -----------------------------------------------------------------------------------


def decode(coding: str, body: bytes) -> bytes:
    if coding == "br":
        return bytes(brotli.decompress(body))
    if coding in ("gzip", "x-gzip"):
        d = zlib.decompressobj(31)
        out = d.decompress(body) + d.flush()
        if not d.eof or d.unused_data:
            raise ValueError("gzip stream not exactly one member")
        return out
    if coding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unknown coding {coding!r}")


def _rgb(im: Image.Image) -> Image.Image:
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    a, b = _rgb(a), _rgb(b)
    if a.mode != b.mode:
        a, b = a.convert("RGBA"), b.convert("RGBA")
    rms = ImageStat.Stat(ImageChops.difference(a, b)).rms
    mse = sum(x * x for x in rms) / len(rms)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def check(
    r: Response, original: bytes, mtype: str, profile: Profile, where: str, problems: list[str]
) -> Served:
    """Verify one answer (see the module docstring); problems are appended."""

    def bad(msg: str) -> None:
        problems.append(f"{where}: {msg}")

    ce = r.get("content-encoding").lower()
    ctype = r.get("content-type").split(";", 1)[0].strip().lower()
    served = Served(
        r.status, len(r.body), r.wire_bytes, ce or "identity", r.get("etag"), r.get("cache-status")
    )
    if r.status != 200:
        bad(f"status {r.status}")
        return served
    if "content-length" in r.fields and int(r.get("content-length")) != len(r.body):
        bad(f"Content-Length {r.get('content-length')} but {len(r.body)} body bytes")
    if ce and ce != "identity":
        if ce not in profile.codings:
            bad(f"Content-Encoding {ce} not accepted by profile {profile.name}")
        try:
            payload = decode(ce, r.body)
        except Exception as exc:  # noqa: BLE001 - any decode failure is a finding
            bad(f"cannot decode {ce}: {exc!r}")
            return served
    else:
        payload = r.body
    if mtype in MEDIA.values() and ctype != mtype:
        served.label = ctype.removeprefix("image/")
        if ctype not in profile.image_types:
            bad(f"{ctype} sent for a {mtype} to a client whose Accept does not name it")
        if ce:
            bad(f"image variant with Content-Encoding {ce}")
        try:
            got = Image.open(io.BytesIO(payload))
            got.load()
            want = Image.open(io.BytesIO(original))
            want.load()
        except Exception as exc:  # noqa: BLE001
            bad(f"{ctype} body does not decode: {exc!r}")
            return served
        ws, gs = _rgb(want).size, got.size
        if ws != gs:
            bad(f"{ctype} is {gs[0]}x{gs[1]}, original {ws[0]}x{ws[1]}")
        else:
            served.psnr = psnr(want, got)
        if len(payload) >= len(original):
            bad(f"{ctype} variant ({len(payload)} B) not smaller than original ({len(original)} B)")
    elif payload != original:
        bad(
            f"decoded body ({len(payload)} B, {ce or 'identity'}) differs from the file "
            f"({len(original)} B)"
        )
    return served


def is_hit(cache_status: str) -> bool:
    """Whether this tier's (the last) Cache-Status member says ``hit`` (RFC 9211)."""
    params = cache_status.split(",")[-1].split(";")[1:]
    return any(p.strip() == "hit" for p in params)


# Run ----------------------------------------------------------------------------------------


def site_files() -> list[tuple[str, bytes, str]]:
    out = []
    for p in sorted(SITE.rglob("*")):
        if p.is_file():
            rel = p.relative_to(SITE).as_posix()
            ctype = MEDIA.get(p.suffix.lower(), "")
            out.append(("/" + rel, p.read_bytes(), ctype))
    return out


def warm(edge: int, files: list[tuple[str, bytes, str]]) -> int:
    """Fetch until two answers in a row agree; returns the number of requests."""
    n = 0
    for prof in PROFILES:
        for target, _, _ in files:
            last = None
            for _ in range(5):
                r = fetch(edge, target, prof.headers)
                n += 1
                sig = (r.status, r.get("content-encoding"), r.get("content-type"), len(r.body))
                if sig == last:
                    break
                last = sig
    return n


def run(args: argparse.Namespace) -> int:
    settings = OptimizeSettings.model_validate(yaml.safe_load(EDGE_CONFIG.read_text())["optimize"])
    files = site_files()
    run_dir = Path(tempfile.mkdtemp(prefix="cdn-bench-optimize-"))
    procs = Procs(run_dir)
    t0 = time.monotonic()
    problems: list[str] = []
    try:
        ports = start_servers(procs, run_dir, settings, not args.no_nginx)
        edge = ports["edge"]
        m0 = optimize_metrics(ports["edge_admin"])
        cpu0 = cpu_seconds(procs.pid("edge"))
        tw = time.monotonic()
        warm_requests = warm(edge, files)
        warm_wall = time.monotonic() - tw
        m1 = optimize_metrics(ports["edge_admin"])
        cpu1 = cpu_seconds(procs.pid("edge"))

        results: dict[tuple[str, str, str], Served] = {}  # (server, profile, target)
        for prof in PROFILES:
            for target, original, mtype in files:
                for server in ("edge", "nginx"):
                    if server not in ports:
                        continue
                    r = fetch(ports[server], target, prof.headers)
                    s = check(r, original, mtype, prof, f"{server} {prof.name} {target}", problems)
                    results[(server, prof.name, target)] = s
                    if server == "edge" and not is_hit(s.cache_status):
                        problems.append(
                            f"edge {prof.name} {target}: not a cache hit after warming "
                            f"(Cache-Status: {s.cache_status!r})"
                        )
        m2 = optimize_metrics(ports["edge_admin"])
        again = {
            k: v for k, v in delta(m2, m1).items() if k[0] != "cdn_optimize_variants_served_total"
        }
        if again:
            problems.append(f"encoders ran again while measuring warmed variants: {again}")

        # Conditional requests on every edge answer; distinct tags per representation.
        conditional = 0
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        for prof in PROFILES:
            for target, _, _ in files:
                s = results[("edge", prof.name, target)]
                if not s.etag:
                    problems.append(f"edge {prof.name} {target}: no ETag")
                    continue
                seen = tags[target].setdefault(s.etag, s.label)
                if seen != s.label:
                    problems.append(
                        f"edge {target}: ETag {s.etag} used for both {seen} and {s.label}"
                    )
                r = fetch(edge, target, {**prof.headers, "If-None-Match": s.etag})
                conditional += 1
                if r.status != 304:
                    problems.append(
                        f"edge {prof.name} {target}: If-None-Match {s.etag} answered "
                        f"{r.status}, not 304"
                    )
        for target, by_tag in tags.items():
            labels = list(by_tag.values())
            if len(set(labels)) != len(labels):
                problems.append(f"edge {target}: one representation with several ETags: {by_tag}")

        versions = tool_versions(ports)
    finally:
        procs.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    elapsed = time.monotonic() - t0

    nginx_cpu = nginx_gzip_estimate(files, results) if "nginx" in ports else None
    report = render(
        files=files,
        results=results,
        settings=settings,
        warm_metrics=delta(m1, m0),
        warm_requests=warm_requests,
        warm_wall=warm_wall,
        edge_cpu=cpu1 - cpu0,
        conditional=conditional,
        problems=problems,
        nginx_cpu=nginx_cpu,
        versions=versions,
        elapsed=elapsed,
        with_nginx="nginx" in ports,
    )
    print(report)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"optimize-{dt.date.today():%Y%m%d}.md"
        out.write_text(report)
        README_SECTION.write_text(
            readme_section(results, settings, delta(m1, m0), problems, out, "nginx" in ports)
        )
        print(f"wrote {out.relative_to(REPO)} and {README_SECTION.relative_to(REPO)}")
    return 1 if problems else 0


def tool_versions(ports: dict[str, int]) -> str:
    parts = [
        f"Python {platform.python_version()}",
        f"Pillow {PIL.__version__}",
        f"brotli {brotli.__version__}",
        f"zlib {zlib.ZLIB_RUNTIME_VERSION}",
    ]
    if "nginx" in ports:
        p = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=10)
        parts.insert(0, (p.stderr or p.stdout).strip().replace("nginx version: ", ""))
    return ", ".join(parts)


def nginx_gzip_estimate(
    files: list[tuple[str, bytes, str]], results: dict[tuple[str, str, str], Served]
) -> tuple[float, int]:
    """CPU seconds of zlib level 6 (nginx's gzip_comp_level 6) over the bodies nginx
    gzipped in one pass of the gzip profile, measured in this process; and their count."""
    bodies = [orig for t, orig, _ in files if results[("nginx", "gzip", t)].label == "gzip"]
    if not bodies:
        return 0.0, 0
    reps = 0
    start = time.process_time()
    while time.process_time() - start < 0.3:
        for b in bodies:
            c = zlib.compressobj(6, zlib.DEFLATED, 31)
            c.compress(b)
            c.flush()
        reps += 1
    return (time.process_time() - start) / reps, len(bodies)


# Report -------------------------------------------------------------------------------------


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.optimize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--no-nginx", action="store_true", help="edge only, no comparison")
    ap.add_argument("--no-write", action="store_true", help="print the report, write no files")
    ap.add_argument("--max-seconds", type=int, default=170, help="hard limit for the run")
    args = ap.parse_args(argv)
    install_signal_handlers(args.max_seconds)
    try:
        return run(args)
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
