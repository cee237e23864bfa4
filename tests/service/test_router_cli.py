"""``python -m router`` as a process: configuration errors and busy ports exit 2 with one
line naming the file and field (or the address); SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query

ROOT = Path(__file__).resolve().parents[2]


def run_router(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A port free for both UDP and TCP right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def test_bad_config_names_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "router.yaml"
    cfg.write_text("health:\n  fall: 0\n")
    r = run_router("--config", str(cfg), "--port", "0", "--admin-port", "0")
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert str(cfg) in line and "health.fall" in line
    r = run_router("--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "missing.yaml" in r.stderr
    r = run_router("--edge", "edge1=nowhere", "--port", "0", "--admin-port", "0")
    assert r.returncode == 2 and "--edge" in r.stderr


def test_udp_port_in_use_exits_2_naming_the_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        r = run_router("--port", str(port), "--admin-port", "0")
    assert r.returncode == 2
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_serves_and_stops_cleanly_on_sigterm() -> None:
    port, admin = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "router",
            "--config",
            "configs/router.yaml",
            "--port",
            str(port),
            "--admin-port",
            str(admin),
            "--edge",
            "e1=127.0.0.1:1:2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"},
    )
    try:
        answer = None
        deadline = time.monotonic() + 15
        while answer is None and time.monotonic() < deadline:
            try:
                q = dns.message.make_query("www.example.test", "A")
                answer = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3)
            except (OSError, dns.exception.Timeout):
                time.sleep(0.1)
        assert answer is not None, "router never answered"
        # e1's admin port refuses: it goes down, but is still the least-bad answer.
        assert [rr.address for rrset in answer.answer for rr in rrset] == ["127.0.0.1"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Unclosed" not in err
