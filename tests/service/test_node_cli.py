"""``python -m edge`` / ``python -m mid_tier`` as processes: bad configuration and busy
ports give one line naming the file and field (or the address) and exit status 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)


@pytest.mark.parametrize("module", ["edge", "mid_tier"])
def test_missing_config_file_names_it(module):
    r = run(module, "--config", "/nonexistent/edge.yaml", "--upstream", "http://127.0.0.1:1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "/nonexistent/edge.yaml" in r.stderr


def test_invalid_field_names_file_and_field(tmp_path):
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("cache:\n  max_bytes: lots\n")
    r = run("edge", "--config", str(cfg), "--upstream", "http://127.0.0.1:1")
    assert r.returncode == 2 and str(cfg) in r.stderr and "cache.max_bytes" in r.stderr


def test_unknown_key_rejected(tmp_path):
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("cache:\n  max_byte: 1000\n")
    r = run("edge", "--config", str(cfg), "--upstream", "http://127.0.0.1:1")
    assert r.returncode == 2 and "cache.max_byte" in r.stderr


def test_no_upstream_is_a_clear_error():
    r = run("edge", "--port", "0")
    assert r.returncode == 2 and "upstream" in r.stderr


def test_port_in_use_names_the_address():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run("edge", "--port", str(port), "--admin-port", "0",
                "--upstream", "http://127.0.0.1:1")
    assert r.returncode == 2 and f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr
