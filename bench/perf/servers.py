"""The servers of a run: the origin (nginx static), nginx ``proxy_cache`` (1 worker),
Varnish (malloc storage) and our edge (1 process, or N workers).

Ports are in the 281xx range, away from the team harness's 180xx ones, so the two can
run on one box. Runtime state (configs, caches, logs, objects) lives under one run
directory, ``/tmp/cdn-bench-<pid>`` unless ``--run-dir`` says otherwise.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.perf.procs import Procs, port_free, wait_tcp

CONF = Path(__file__).parent / "conf"
REPO = Path(__file__).resolve().parents[2]

ORIGIN_PORT = 28180
SIZES = {"1k": 1024, "100k": 100 * 1024, "1m": 1024 * 1024}


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # nginx | varnish | edge
    port: int
    workers: int = 1

    @property
    def pinned(self) -> bool:
        """Single-process servers run on CPU0 and wrk on CPU1 (when pinning is on);
        multi-worker ones get both cores, as they would in production."""
        return self.workers == 1


def targets(edge_workers: int) -> list[Target]:
    out = [
        Target("nginx", "nginx", 28181),
        Target("varnish", "varnish", 28182),
        Target("edge", "edge", 28183),
    ]
    if edge_workers > 1:
        out.append(Target(f"edge-w{edge_workers}", "edge", 28184, edge_workers))
    return out


def fill_template(path: Path, **values: object) -> str:
    """The text of ``path`` with every ``@NAME@`` replaced by ``values["NAME"]``."""
    text = path.read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    return text


def _fill(template: str, **values: int | str) -> str:
    return fill_template(CONF / template, **values)


def edge_config(path: Path) -> Path:
    """``configs/edge.yaml`` with room for the load generators (written to ``path``).
    max_connections_per_client: the miss test opens 1,000 connections from 127.0.0.1 at
    once (the shipped 256 would refuse most of them with 503); max_bytes: the memory test
    stores a few hundred MiB; access_log.sample 0: the nginx anchor runs with
    ``access_log off`` (Varnish logs to shared memory whatever we do), so neither proxy
    writes a log line. Everything else is the shipped edge configuration."""
    cfg = yaml.safe_load((REPO / "configs" / "edge.yaml").read_text())
    cfg.setdefault("limits", {}).update(max_connections=20_000, max_connections_per_client=8192)
    cfg.setdefault("cache", {})["max_bytes"] = 2 * 1024**3
    cfg.setdefault("access_log", {})["sample"] = 0
    cfg["name"] = "edge-bench"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class Servers:
    """Starts, warms and stops the servers of one run."""

    def __init__(self, run_dir: Path, procs: Procs, *, pin: bool) -> None:
        self.run = run_dir
        self.procs = procs
        self.pin = pin
        self.origin_log = run_dir / "origin" / "logs" / "access.log"
        self.edge_yaml = edge_config(run_dir / "edge-bench.yaml")

    def _check_port(self, port: int) -> None:
        if not port_free(port):
            raise RuntimeError(f"127.0.0.1:{port} is in use (another benchmark running?)")

    # origin ------------------------------------------------------------------------------
    def start_origin(self) -> None:
        root = self.run / "origin"
        for sub in ("www/obj", "logs", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for name, size in SIZES.items():
            f = root / "www" / "obj" / name
            if not f.exists() or f.stat().st_size != size:
                f.write_bytes(os.urandom(size))
        self.origin_log.write_bytes(b"")
        (root / "nginx.conf").write_text(_fill("nginx-origin.conf", PORT=ORIGIN_PORT))
        self._check_port(ORIGIN_PORT)
        # The origin is not pinned: it only serves warm-up and miss-test fetches.
        proc = self.procs.start(
            "origin",
            [
                "nginx",
                "-p",
                str(root),
                "-c",
                str(root / "nginx.conf"),
                "-e",
                str(root / "logs" / "error.log"),
            ],
        )
        wait_tcp(ORIGIN_PORT, proc)

    def origin_fetches(self) -> int:
        """Requests the origin has answered so far (lines of its access log)."""
        with open(self.origin_log, "rb") as f:
            return sum(1 for _ in f)

    # targets -----------------------------------------------------------------------------
    def start(self, t: Target, *, name: str | None = None, pin: bool | None = None) -> int:
        """Start target ``t``; returns the PID whose process tree is the server."""
        name = name or t.name
        pin = (self.pin and t.pinned) if pin is None else pin
        cpu = "0" if pin else None
        self._check_port(t.port)
        if t.kind == "nginx":
            root = self.run / name
            for sub in ("logs", "cache", "tmp"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            (root / "nginx.conf").write_text(
                _fill("nginx-proxy.conf", PORT=t.port, ORIGIN_PORT=ORIGIN_PORT)
            )
            argv = [
                "nginx",
                "-p",
                str(root),
                "-c",
                str(root / "nginx.conf"),
                "-e",
                str(root / "logs" / "error.log"),
            ]
        elif t.kind == "varnish":
            root = self.run / name
            root.mkdir(parents=True, exist_ok=True)
            vcl = root / "bench.vcl"
            vcl.write_text(_fill("varnish.vcl", ORIGIN_PORT=ORIGIN_PORT))
            argv = [
                "varnishd",
                "-F",
                "-n",
                str(root / "state"),
                "-a",
                f"127.0.0.1:{t.port}",
                "-f",
                str(vcl),
                "-s",
                "malloc,2G",
                "-T",
                "127.0.0.1:0",
            ]
        else:
            for p in range(t.port + 1000, t.port + 1000 + t.workers):
                self._check_port(p)  # admin ports
            argv = [
                sys.executable,
                "-m",
                "edge",
                "--config",
                str(self.edge_yaml),
                "--port",
                str(t.port),
                "--upstream",
                f"http://127.0.0.1:{ORIGIN_PORT}",
                "--log-level",
                "WARNING",
            ]
            if t.workers > 1:
                argv += ["--workers", str(t.workers)]
        proc = self.procs.start(name, argv, cpu=cpu, cwd=REPO)
        try:
            wait_tcp(t.port, proc, timeout=60 if t.kind == "varnish" else 20)
        except RuntimeError as exc:
            log = (self.procs.logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} did not start: {exc}\n{log}") from exc
        return proc.pid

    def warm(self, t: Target, paths: list[str]) -> dict[str, str]:
        """Request each path on fresh connections until it is stored (for N workers:
        enough connections that SO_REUSEPORT lands on every worker); returns the
        cache-status header of the last response for each path."""
        seen = {}
        for path in paths:
            for _ in range(4 + 6 * t.workers):
                status, headers = get(t.port, path)
                if status != 200:
                    raise RuntimeError(f"{t.name} answered {status} for {path}")
            seen[path] = headers.get("x-cache") or headers.get("cache-status", "?")
        return seen


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)  # Host: 127.0.0.1:PORT, as wrk sends
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def wait_until(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False
