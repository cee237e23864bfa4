"""Starting and stopping the processes a benchmark run needs, by PID only.

Every process is started in its own session (so its process group id is its PID) and is
stopped with SIGTERM to that PID, then, after a grace period, SIGKILL to that process
group: the group is one this module created, so nothing else on the machine is touched
(other engineers run tests on the same box). :meth:`Procs.stop_all` runs from a
``finally`` in the entry point, which also turns SIGTERM/SIGINT/SIGALRM into exceptions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class Procs:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        cpu: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` (pinned with ``taskset -c cpu`` when ``cpu``), output to
        ``RUN/logs/NAME.log``."""
        if name in self.started:
            raise RuntimeError(f"{name} already started")
        if cpu is not None:
            argv = ["taskset", "-c", cpu, *argv]
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        self.started[name] = proc
        return proc

    def pid(self, name: str) -> int:
        return self.started[name].pid

    def alive(self, name: str) -> bool:
        proc = self.started.get(name)
        return proc is not None and proc.poll() is None

    def stop(self, name: str, grace: float = 10.0) -> None:
        proc = self.started.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Children left behind by a leader that died (nginx workers, varnish's child) are
        # still in the group this module created: take them down too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in reversed(list(self.started)):
            try:
                self.stop(name)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"warning: stopping {name}: {exc!r}", flush=True)


def first_output_line(argv: list[str]) -> str:
    """The first line ``argv`` prints on stdout or stderr (a tool's version), else ``?``."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else "?"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # as the servers do: connections of an earlier run in TIME_WAIT do not block it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_tcp(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0,
             host: str = "127.0.0.1") -> None:
    """Wait until ``host``:``port`` accepts; raise if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{host}:{port} not accepting after {timeout:.0f} s")


class Interrupted(BaseException):
    """SIGTERM, SIGINT or the run's time limit: unwind through the ``finally`` blocks."""


def install_signal_handlers(max_seconds: int) -> None:
    def raise_it(signum: int, _frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, raise_it)
    signal.alarm(max_seconds)
