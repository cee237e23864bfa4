"""``python -m origin`` as a process: it serves the example site, stops cleanly on SIGTERM,
and refuses bad configuration or a busy port with one line and exit status 2."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_origin(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "origin", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_config_prints_one_line_naming_file_and_field(tmp_path):
    bad = tmp_path / "origin.yaml"
    bad.write_text("port: 99999\n")
    proc = run_origin("--config", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0] and "port" in lines[0]


def test_missing_root_names_the_root_field(tmp_path):
    proc = run_origin("--root", str(tmp_path / "missing"), "--port", "0", "--admin-port", "0")
    assert proc.returncode == 2
    assert re.search(r"root: .*not a directory", proc.stderr), proc.stderr


def test_port_in_use_names_the_address():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_origin("--port", str(port), "--admin-port", "0")
    assert proc.returncode == 2
    assert f"127.0.0.1:{port}" in proc.stderr
    assert "in use" in proc.stderr


def test_serves_the_example_site_and_stops_cleanly_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "origin", "--port", "0", "--admin-port", "0"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        ports = None
        while ports is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            ports = re.search(
                r"on http://127\.0\.0\.1:(\d+) \(admin http://127\.0\.0\.1:(\d+)\)", line
            )
        assert ports is not None, "origin did not report its ports"
        port, admin_port = int(ports.group(1)), int(ports.group(2))

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
            assert resp.status == 200
            assert b"Lantern Street" in resp.read()
            assert resp.headers["Surrogate-Key"] == "html site"
        url = f"http://127.0.0.1:{admin_port}/status"
        with urllib.request.urlopen(url, timeout=5) as resp:
            status = json.load(resp)
        assert status["role"] == "origin"
        assert status["by_path"] == {"/index.html": 1}
        assert status["root"] == str((REPO / "examples" / "site").resolve())

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        rest = proc.stderr.read()
        assert "Traceback" not in rest and "Unclosed" not in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
