"""A stack started by ``cdnctl up`` itself, beside the chaos stack, for scenarios about
what ``cdnctl up`` does (its supervision): the same generated topology
(:func:`control_plane.chaos.topology.build`) on a network of its own, run by
``python -m control_plane.cli up --config <workdir>/stack.yaml`` in a process group of
its own, with upstreams direct (no fault proxies: faults here are signals to its
children, whose pids ``supervisor.json`` lists).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from control_plane.chaos.topology import Topology, build

UP_TIMEOUT = 60.0


def sibling_net(net: str, offset: int = 2) -> str:
    """``127.0.3`` -> ``127.0.5``: a /24 beside the chaos stack's."""
    a, b, c = net.split(".")
    third = int(c) + offset
    return f"{a}.{b}.{third if third <= 254 else third - 250}"


class UpStack:
    """``cdnctl up`` on :attr:`topo` (see the module docstring); an async context
    manager that waits for "stack is up" and stops the whole group on exit."""

    def __init__(self, workdir: Path, net: str) -> None:
        self.topo: Topology = build(workdir, net)
        self.log = workdir / "cdnctl-up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> UpStack:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "control_plane.cli", "up", "--config",
                 str(self.topo.workdir / "stack.yaml")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        t0 = time.monotonic()
        while time.monotonic() - t0 < UP_TIMEOUT:
            if self.proc.poll() is not None or b"stack is up" in self.log.read_bytes():
                break
            await asyncio.sleep(0.2)
        if b"stack is up" not in self.log.read_bytes():
            await self.__aexit__()
            tail = self.log.read_text(errors="replace")[-600:]
            raise RuntimeError(f"cdnctl up did not come up: {tail}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(proc.wait, 20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left of the group

    def children(self) -> dict[str, Any]:
        """``supervisor.json``'s children: ``{name: {"pid", "state", "restarts", ...}}``."""
        data = json.loads((self.topo.workdir / "supervisor.json").read_text())
        return dict(data["children"])

    def output(self) -> str:
        return self.log.read_text(errors="replace")
