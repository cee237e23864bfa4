"""The chaos stack in containers: ``cdnctl chaos run --compose``.

Every process of the chaos topology becomes a service of a generated docker-compose
project, run from the image ``docker-compose.yml`` builds (``tiered-cdn:latest``) with the
same command line :func:`control_plane.stack.processes` gives ``cdnctl up``. The services
use the host's network, so the topology keeps its loopback addresses (127.X.Y.N) and the
runner's fault proxies stand between the tiers exactly as they do for local processes;
the work directory (configs, content, state) is mounted at the same path. Faults go
through compose: ``kill -s SIGKILL`` (a killed container stays down: compose does not
restart what was killed), ``kill -s SIGSTOP`` / ``SIGCONT``, ``start``.

:class:`ComposeSupervisor` has the interface of the launcher's
:class:`~control_plane.launcher.Supervisor`, which is all :class:`ChaosStack` needs, and
:class:`ComposeService` the part of ``subprocess.Popen`` it uses.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from control_plane.launcher import Supervisor
from control_plane.stack import Process

DEFAULT_IMAGE = "tiered-cdn:latest"
_RUNNING = ("created", "running", "paused", "restarting")


def compose_command() -> list[str] | None:
    """``docker compose`` (v2) or ``docker-compose`` (v1), whichever works here."""
    if shutil.which("docker"):
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if v2.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def missing(image: str) -> str | None:
    """Why the compose target cannot run here, or None when it can."""
    if compose_command() is None:
        return "neither `docker compose` nor `docker-compose` is installed"
    info = subprocess.run(["docker", "info"], capture_output=True, check=False)
    if info.returncode != 0:
        return "the Docker engine is not running (docker info failed)"
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    if found.returncode != 0:
        return f"no image {image} (build it: docker compose build)"
    return None


def compose_file(procs: list[Process], workdir: Path, image: str) -> dict[str, Any]:
    """The compose project for ``procs``: one service per process, host network, the
    work directory mounted at its own path, the process's command line run by the
    image's ``python``."""
    services = {}
    for p in procs:
        services[p.name] = {
            "image": image,
            "network_mode": "host",
            "command": ["python", *p.argv[1:]],
            "environment": dict(p.env or {}),
            "volumes": [f"{workdir}:{workdir}"],
            "restart": "no",
            "stop_grace_period": "5s",
        }
    return {"version": "2.4", "services": services}


class ComposeService:
    """One service's container, seen as a child process."""

    def __init__(self, sup: ComposeSupervisor, name: str) -> None:
        self._sup = sup
        self.name = name

    def poll(self) -> int | None:
        """None while the container runs (or is paused), else its exit code."""
        return self._sup.states().get(self.name)

    def send_signal(self, sig: int) -> None:
        self._sup.compose("kill", "-s", signal.Signals(sig).name, self.name)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (rc := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"container {self.name}", timeout or 0)
            time.sleep(0.05)
        return rc


class ComposeSupervisor(Supervisor):
    """Starts, watches and stops the processes as compose services (see the module
    docstring). ``project`` names the compose project; its file is written to
    ``workdir / "chaos-compose.yml"``."""

    def __init__(
        self, procs: list[Process], log_dir: Path, workdir: Path, image: str, project: str
    ) -> None:
        super().__init__(procs, log_dir)
        command = compose_command()
        if command is None:
            raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")
        self.file = workdir / "chaos-compose.yml"
        self.file.write_text(yaml.safe_dump(compose_file(procs, workdir, image), sort_keys=False))
        self._base = [*command, "-p", project, "-f", str(self.file)]
        self._ids: dict[str, str] = {}
        self.children: dict[str, ComposeService] = {}  # type: ignore[assignment]

    def compose(self, *args: str, timeout: float = 120) -> str:
        """Run one compose command; its standard output.

        Raises:
            RuntimeError: the command failed (with its error output).
        """
        done = subprocess.run(
            [*self._base, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def _id(self, name: str) -> str:
        """The service's container id ("" before it was created)."""
        if not self._ids.get(name):
            self._ids[name] = self.compose("ps", "-q", name).strip()
        return self._ids[name]

    def states(self) -> dict[str, int | None]:
        """Every started service: None while running or paused, else its exit code (one
        ``docker inspect`` for all)."""
        by_id = {self._id(n): n for n in self.children if self._id(n)}
        if not by_id:
            return {}
        done = subprocess.run(
            ["docker", "inspect", "-f", "{{.Id}} {{.State.Status}} {{.State.ExitCode}}", *by_id],
            capture_output=True,
            text=True,
            check=False,
        )
        out: dict[str, int | None] = {}
        for line in done.stdout.splitlines():
            cid, status, code = (line.split() + ["", "", ""])[:3]
            # `ps -q` may give short ids; inspect gives full ones
            name = next((n for i, n in by_id.items() if cid.startswith(i)), None) if cid else None
            if name is not None:
                out[name] = None if status in _RUNNING else int(code or 0)
        for name in by_id.values():
            out.setdefault(name, 137)  # gone (removed behind our back): not running
        return out

    def start_all(self, procs: list[Process] | None = None) -> None:
        chosen = self.procs if procs is None else procs
        for p in chosen:  # first: a failed `up` still leaves the project for stop_all
            self.children[p.name] = ComposeService(self, p.name)
        self.compose("up", "-d", "--no-deps", *(p.name for p in chosen))

    def start(self, p: Process) -> ComposeService:  # type: ignore[override]
        """Start (or, after it exited, start again) one service."""
        if p.name in self.children:
            self.compose("start", p.name)
        else:
            self.compose("up", "-d", "--no-deps", p.name)
            self.children[p.name] = ComposeService(self, p.name)
        return self.children[p.name]

    def exited(self) -> list[tuple[Process, int]]:
        states = self.states()
        return [(p, rc) for p in self.procs if (rc := states.get(p.name)) is not None]

    def log_tail(self, name: str, lines: int = 3) -> str:
        if not self._id(name):
            return ""
        done = subprocess.run(
            ["docker", "logs", "--tail", str(lines), self._id(name)],
            capture_output=True,
            text=True,
            check=False,
        )
        return (done.stdout + done.stderr).strip()

    def stop_all(self) -> None:
        """Keep every service's log in ``log_dir``, then remove the project."""
        self.stopping = True
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.children:
            if self._id(name):
                with open(self.log_dir / f"{name}.log", "wb") as f:
                    subprocess.run(
                        ["docker", "logs", self._id(name)],
                        stdout=f,
                        stderr=subprocess.STDOUT,
                        check=False,
                    )
        self.compose("down", "-t", "5")
