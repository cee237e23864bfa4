"""``cdnctl up`` refuses, before it starts or writes anything, a state directory another
launcher holds, a listener that is taken, and a state directory it cannot make: one line
each (found by a new-user check: two stacks once shared one database)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from control_plane.launcher import preflight


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_state_directory_held_by_another_launcher_is_refused(tmp_path: Path) -> None:
    first, problem = preflight(tmp_path, [])
    assert problem is None and first is not None
    try:
        again, problem = preflight(tmp_path, [])
        assert again is None and "in use by another cdnctl up" in problem
        assert str(__import__("os").getpid()) in problem
    finally:
        first.close()
    later, problem = preflight(tmp_path, [])  # released with the first launcher
    assert problem is None and later is not None
    later.close()


def test_a_taken_listener_is_refused_naming_it(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        lock, problem = preflight(tmp_path, [("origin", "127.0.0.1", port, "tcp")])
    assert lock is None and f"127.0.0.1:{port}/tcp (origin) is in use" in problem
    assert "--net auto" in problem


def test_a_state_directory_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    lock, problem = preflight(afile, [])
    assert lock is None and problem.startswith(f"state directory {afile}:")
    out = subprocess.run([sys.executable, "-m", "control_plane.cli.main", "up",
                          "--state-dir", str(afile / "sub"), "--net", "auto"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: state directory")
