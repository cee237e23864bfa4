"""The whole stack as real processes, started the way the README does (``cdnctl up`` with
``configs/stack.yaml``), on a loopback network no other stack uses (``--net``, picked by
:func:`control_plane.netcheck.free_net`), with logs and state in a temporary directory.
So a chain test never clashes with a running ``cdnctl up`` or another test run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from control_plane.netcheck import free_net
from control_plane.stack import StackConfig, load_stack, on_net

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "configs" / "stack.yaml"
SITE = "www.example.test"


def get_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class Stack:
    """A running stack: its process, log, state directory and (moved) addresses."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, state: Path,
                 config: StackConfig) -> None:
        self.proc = proc
        self.log = log
        self.state = state
        self.config = config
        self.edges = [n.host for n in config.edges.nodes]
        self.router = (config.router.host, config.router.port)
        cp, o = config.control_plane, config.origin
        self.api = f"http://{cp.host}:{cp.port}"
        self.origin_admin = f"http://{o.host}:{o.admin_port}"

    def cdnctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        # cdnctl finds the admin key that `cdnctl up` wrote in the state directory.
        env = {**os.environ, "CDN_STATE_DIR": str(self.state), "CDN_API": self.api}
        return subprocess.run([sys.executable, "-m", "control_plane.cli", *args],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)

    def origin_count(self, path: str) -> int:
        return int(get_json(f"{self.origin_admin}/status")["by_path"].get(path, 0))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("stack")
    config, _ = load_stack(STACK)
    net = free_net(config)
    env = {**os.environ, "CDN_STATE_DIR": str(state)}
    log = state / "cdnctl-up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "up", "--config", str(STACK),
             "--net", net],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"cdnctl up exited {proc.returncode}:\n{log.read_text()}")
        if b"stack is up" in log.read_bytes():
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"stack not up within 60 s:\n{log.read_text()}")
    s = Stack(proc, log, state, on_net(config, net))
    yield s
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        pytest.fail("cdnctl up did not stop within 20 s of SIGTERM")
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("children of cdnctl up outlived it")
