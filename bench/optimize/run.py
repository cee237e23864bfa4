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
from pathlib import Path

import brotli
import PIL
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.optimize.check import check, is_hit
from bench.optimize.http1 import fetch
from bench.optimize.profiles import MEDIA, PROFILES, Served
from bench.optimize.report import readme_section, render
from bench.perf.procs import Interrupted, Procs, install_signal_handlers, wait_tcp
from bench.perf.proctree import cpu_seconds
from bench.perf.servers import REPO
from cdn_core.optimize.settings import OptimizeSettings

SITE = REPO / "examples" / "site"
EDGE_CONFIG = REPO / "configs" / "edge.yaml"
RESULTS = REPO / "bench" / "results"
README_SECTION = Path(__file__).resolve().parent / "RESULTS.md"
NGINX_CONF = Path(__file__).resolve().parent / "conf" / "nginx-static.conf"


# nginx's gzip_types cannot take "text/*"; the edge's patterns are expanded to the
# concrete types nginx labels files with (text/html is always compressed by nginx).
NGINX_EXTRA_TYPES = ("text/css", "text/plain", "text/javascript", "text/xml", "text/csv")



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
