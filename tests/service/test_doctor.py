"""``cdnctl doctor`` on real sockets and a real PATH: a port taken by another process is
an error that names it, a missing optional tool a warning with its package, loose secret
files an error, and a running stack's own ports are fine."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from control_plane import doctor

REPO = Path(__file__).resolve().parents[2]


def stack_file(tmp_path: Path, **ports: int) -> Path:
    """``configs/stack.yaml`` with its relative paths kept and ``ports`` replacing the
    origin's (``origin_port``) or the control plane's (``control_port``)."""
    cfg = yaml.safe_load((REPO / "configs" / "stack.yaml").read_text())
    for section in ("origin", "mid_tier", "edges", "router", "control_plane"):
        cfg[section]["config"] = str(REPO / "configs" / cfg[section]["config"])
    cfg["origin"]["root"] = str(REPO / "examples" / "site")
    cfg["state_dir"] = str(tmp_path / "run")
    cfg["log_dir"] = str(tmp_path / "run" / "logs")
    if "origin_port" in ports:
        cfg["origin"]["port"] = ports["origin_port"]
    if "control_port" in ports:
        cfg["control_plane"]["port"] = ports["control_port"]
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_port_held_by_another_process_is_an_error_naming_it(tmp_path):
    port = free_port()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, time\n"
         f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); "
         "print('up', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"up\n"
        out = subprocess.run(
            [sys.executable, "-m", "control_plane.cli.main", "doctor", "--config",
             str(stack_file(tmp_path, origin_port=port, control_port=free_port()))],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert out.returncode == 1, out.stdout
    line = next(x for x in out.stdout.splitlines() if f"127.0.0.1:{port}/tcp" in x)
    assert line.startswith("error") and f"pid {holder.pid}" in line and "origin" in line


def test_missing_optional_tools_are_warnings_with_their_package(tmp_path):
    checks = doctor.check_tools(path=str(tmp_path))  # an empty PATH: nothing found
    assert {c.level for c in checks} == {"warning"}
    redis = next(c for c in checks if c.name == "tool redis-server")
    assert "rate limits" in redis.message and redis.fix == "apt-get install redis-server"
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    checks = doctor.check_tools(path=str(tmp_path))
    assert next(c for c in checks if c.name == "tool redis-server").level == "ok"


def test_only_warnings_exit_zero_and_loose_secrets_are_errors(tmp_path, capsys, monkeypatch):
    cfg = stack_file(tmp_path, origin_port=free_port(), control_port=free_port())
    monkeypatch.setattr(doctor, "TOOLS", (("no-such-tool-here", "pkg", "nothing"),))
    args = argparse.Namespace(config=str(cfg), state_dir=None, net=None)
    # The shipped ports may be held by a stack another test runs: judge the rest.
    monkeypatch.setattr(doctor, "check_listeners", lambda *a, **k: [])
    assert doctor.run(args) == 0
    assert "warning tool no-such-tool-here" in capsys.readouterr().out
    (tmp_path / "run").mkdir()
    key = tmp_path / "run" / "admin.key"
    key.write_text("secret\n")
    os.chmod(key, 0o644)
    assert doctor.run(args) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if "admin.key" in x)
    assert line.startswith("error") and f"chmod 600 {key}" in line


def test_ports_of_a_running_stack_are_fine(tmp_path):
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        checks = doctor.check_listeners([("edge1", "127.0.0.1", port, "tcp")],
                                        stack_running=True)
    assert [c.level for c in checks] == ["ok"] and f"pid {os.getpid()}" in checks[0].message


def test_an_address_that_is_not_local_is_an_error_with_the_macos_fix():
    # 192.0.2.1 (TEST-NET-1) is never a local address: what 127.0.1.1 is on macOS.
    check = doctor.check_loopback(["127.0.0.1"])
    assert check.level == "ok"
    checks = doctor.check_listeners([("edge1", "192.0.2.1", 8080, "tcp")], stack_running=False)
    assert checks[0].level == "error" and "ifconfig lo0 alias 192.0.2.1" in checks[0].fix


def test_an_old_python_is_an_error():
    assert doctor.check_python((3, 10, 4)).level == "error"
    assert doctor.check_python((3, 12, 0)).level == "ok"


def test_a_bad_tier_settings_file_is_an_error_naming_the_field(tmp_path):
    cfg = stack_file(tmp_path, origin_port=free_port(), control_port=free_port())
    data = yaml.safe_load(cfg.read_text())
    bad = tmp_path / "edge.yaml"
    bad.write_text("cache:\n  max_byts: 5\n")
    data["edges"]["config"] = str(bad)
    cfg.write_text(yaml.safe_dump(data))
    checks = doctor.run_checks(argparse.Namespace(config=str(cfg), state_dir=None, net=None))
    line = next(c for c in checks if c.name == "settings")
    assert line.level == "error" and "cache.max_byts" in line.message
