"""``cdnctl up``: start the whole stack on one host from ``configs/stack.yaml`` (the
shipped one outside a checkout; ``--net 127.X.Y`` moves it to another loopback network and
``--state-dir`` its state, see :mod:`control_plane.stack_cli`).

Each service runs as its own process with its log in ``log_dir/<name>.log``. The launcher
waits until every node answers its health check, registers the nodes with the control
plane, prints what runs where, and then supervises: a child that exits is started again
with backoff (:mod:`control_plane.supervision`: 0.5 s doubling to 30 s, reset after a
minute up; left down after five failed starts in a row, with its last log lines), its
restart count passed in ``$CDN_RESTARTS`` so that its ``/status`` shows it, and the
children's state written to ``state_dir/supervisor.json``. On Ctrl-C or SIGTERM it sends
SIGTERM to every child, waits, and SIGKILLs any that linger, so no child outlives it
(children also get SIGTERM from the kernel if the launcher itself dies:
PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import yaml

from cdn_core.errors import ConfigError
from cdn_core.pki import ensure_demo_pki
from cdn_core.service import RESTARTS_ENV
from cdn_core.shipped import shipped
from control_plane import stack_cli, supervision
from control_plane.auth import write_secret_file
from control_plane.cli.common import CliError, request
from control_plane.doctor import holder
from control_plane.netcheck import bind_error
from control_plane.stack import (
    Credentials,
    Process,
    StackConfig,
    demo_tls_dir,
    listeners,
    processes,
)

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10.0


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start the whole stack on this host (Ctrl-C stops it)")
    stack_cli.add_arguments(p)
    p.set_defaults(func=run)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0


def ensure_credentials(state: Path) -> Credentials:
    """The stack's secrets in the state directory, created (mode 0600) on first use and
    kept across restarts: ``admin.key`` (what ``cdnctl`` reads by default),
    ``reader.key`` (the router's) and ``node.token`` (control plane <-> nodes)."""
    files = {name: state / name for name in ("admin.key", "reader.key", "node.token")}
    secrets = {name: write_secret_file(path) for name, path in files.items()}
    return Credentials(
        admin_key_file=files["admin.key"],
        reader_key_file=files["reader.key"],
        node_token_file=files["node.token"],
        reader_key=secrets["reader.key"],
    )


def _put_json(url: str, body: dict[str, Any], key: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PUT",
        headers=headers,
    )
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


class Supervisor:
    """Starts, watches, restarts (:meth:`supervise`) and stops the stack's processes."""

    def __init__(
        self,
        procs: list[Process],
        log_dir: Path,
        policy: supervision.RestartPolicy | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.procs = procs
        self.log_dir = log_dir
        self.policy = policy or supervision.RestartPolicy()
        self.state_file = state_file
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.records: dict[str, supervision.ChildRecord] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.stopping = False

    def start_all(self, procs: list[Process] | None = None) -> None:
        for p in self.procs if procs is None else procs:
            self.start(p)

    def start(self, p: Process) -> subprocess.Popen[bytes]:
        """Start (or, after it exited, restart) one process, appending to its log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        old = self._logs.pop(p.name, None)
        if old is not None:
            old.close()  # the previous run's handle (the child that had it has exited)
        log = open(self.log_dir / f"{p.name}.log", "ab")  # noqa: SIM115 - owned until stop
        self._logs[p.name] = log
        rec = self.records.setdefault(p.name, supervision.ChildRecord())
        child = subprocess.Popen(
            p.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            env={**os.environ, **p.env, RESTARTS_ENV: str(rec.restarts)},
        )
        self.children[p.name] = child
        supervision.started(rec, time.monotonic())
        return child

    def supervise(self, now: float) -> list[str]:
        """One round of supervision (call it every 0.1-0.2 s while the stack runs):
        restart children that exited once their delay passed, note which came back
        healthy, leave down those that keep failing. Returns what happened, one line
        each, for the operator."""
        if self.stopping:
            return []
        said: list[str] = []
        changed = False
        for p in self.procs:
            rec, child = self.records.get(p.name), self.children.get(p.name)
            if rec is None or child is None or rec.given_up:
                continue
            if rec.restart_at is not None:
                if now >= rec.restart_at:
                    rec.restarts += 1
                    self.start(p)
                    changed = True
                continue
            rc = child.poll()
            if rc is not None:
                delay = supervision.exited(rec, rc, now, self.policy)
                changed = True
                if delay is None:
                    tail = self.log_tail(p.name, 5)
                    said.append(
                        f"error: {p.name} failed to start {rec.failed_starts} times in a row "
                        f"(last status {rc}); left down. Last lines of its log:\n  "
                        + (tail.replace("\n", "\n  ") or "(empty)")
                    )
                else:
                    said.append(
                        f"{p.name} exited with status {rc}; restarting in {delay:g} s "
                        f"(restart {rec.restarts + 1}; log {self.log_dir}/{p.name}.log)"
                    )
            elif not rec.healthy and _get(p.health_url, 0.3) == 200:
                supervision.became_healthy(rec)
                changed = True
                if rec.restarts:
                    said.append(f"{p.name} is back (restart {rec.restarts})")
        if changed:
            self.write_state()
        return said

    def write_state(self) -> None:
        """Write ``state_file`` (atomically): ``{"launcher_pid", "children": {name:
        {"pid", "state", "restarts", "failed_starts", "last_status"}}}``."""
        if self.state_file is None:
            return
        children = {
            name: {
                "pid": self.children[name].pid if name in self.children else None,
                "state": rec.state(),
                "restarts": rec.restarts,
                "failed_starts": rec.failed_starts,
                "last_status": rec.last_status,
            }
            for name, rec in self.records.items()
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"launcher_pid": os.getpid(), "children": children}, indent=1))
        tmp.replace(self.state_file)

    def exited(self) -> list[tuple[Process, int]]:
        return [
            (p, rc)
            for p in self.procs
            if p.name in self.children and (rc := self.children[p.name].poll()) is not None
        ]

    def log_tail(self, name: str, lines: int = 3) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def wait_healthy(self, timeout: float, procs: list[Process] | None = None) -> list[Process]:
        """Poll the health URL of ``procs`` (default: all) until all answer 200 or
        ``timeout`` seconds pass; returns those not healthy (an exited child fails at
        once)."""
        pending = list(self.procs if procs is None else procs)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline and not self.stopping:
            if any(p in pending for p, _ in self.exited()):
                break
            healthy = [p for p in pending if _get(p.health_url, 0.5) == 200]
            for p in healthy:
                supervision.became_healthy(self.records[p.name])
            pending = [p for p in pending if p not in healthy]
            if pending:
                time.sleep(0.2)
        return pending

    def stop_all(self) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        for log in self._logs.values():
            log.close()
        self._logs.clear()


def preflight(state: Path, entries: list[tuple[str, str, int, str]]
              ) -> tuple[IO[str] | None, str | None]:
    """Before anything is started or written: the state directory exists and no other
    ``cdnctl up`` uses it (an exclusive lock on ``state/launcher.lock``, held while this
    launcher runs), and every listener of the stack can be bound. Returns the open lock
    file, or None and the one line saying what stands in the way."""
    try:
        state.mkdir(parents=True, exist_ok=True)
        lock = open(state / "launcher.lock", "a+", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        return None, f"state directory {state}: {exc.strerror or exc}"
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        lock.close()
        return None, (f"state directory {state} is in use by another cdnctl up (pid {pid}): "
                      "stop it, or give this stack its own --state-dir")
    for what, host, port, proto in entries:
        exc = bind_error(host, port, proto)
        if exc is None:
            continue
        lock.close()
        if exc.errno == errno.EADDRINUSE:
            who = holder(port, proto, host) or "another process"
            return None, (f"{host}:{port}/{proto} ({what}) is in use by {who}: another "
                          "stack? cdnctl up --net auto runs this one beside it")
        return None, (f"cannot listen on {host}:{port}/{proto} ({what}): {exc.strerror}"
                      + (f" (macOS: sudo ifconfig lo0 alias {host} up)"
                         if exc.errno == errno.EADDRNOTAVAIL else ""))
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock, None


def first_service(api: str, key: str, stack: StackConfig, timeout: float) -> str | None:
    """On a control plane without services, apply the shipped example service
    (``examples/services/example.yaml``, its origin set to the stack's) and wait until
    every node runs it; returns what to tell the operator, None when services exist.

    Raises:
        CliError: the API refused it or could not be reached.
    """
    _, listed = request(api, "GET", "/v1/services", key=key)
    if listed["services"]:
        return None
    document = yaml.safe_load(shipped("examples/services/example.yaml").read_text())
    o = stack.origin
    document["domains"] = [stack.site]
    document["origins"]["servers"] = [{"url": f"http://{o.host}:{o.port}"}]
    name = document["name"]
    _, made = request(api, "POST", f"/v1/services/{name}/versions",
                      {"document": document, "comment": "cdnctl up: first start"}, key=key)
    _, service = request(api, "POST", f"/v1/services/{name}/activate",
                         {"version": made["version"]}, key=key)
    deadline = time.monotonic() + timeout
    while service["progress"]["state"] != "complete" and time.monotonic() < deadline:
        time.sleep(0.2)
        _, service = request(api, "GET", f"/v1/services/{name}", key=key)
    progress = service["progress"]
    if progress["state"] != "complete":
        return (f"warning: service {name} version {made['version']} is not running on "
                f"{', '.join(progress['pending_nodes'])} yet")
    return (f"service {name} (examples/services/example.yaml) applied: version "
            f"{made['version']} on {progress['done']}/{progress['total']} nodes")


def _register_nodes(api: str, procs: list[Process], key: str | None = None) -> list[str]:
    failed = []
    for p in procs:
        if p.tier == "control_plane":
            continue
        body = {"tier": p.tier, "host": p.host, "port": p.port, "admin_url": p.admin_url}
        if _put_json(f"{api}/v1/nodes/{p.name}", body, key) != 200:
            failed.append(p.name)
    return failed


def run(args: argparse.Namespace) -> int:
    try:
        sel = stack_cli.select(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stack, base = sel.stack, sel.base
    lock, problem = preflight(sel.state, listeners(stack))
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    assert lock is not None  # held (open) until this process exits
    try:
        credentials = ensure_credentials(sel.state)
        admin_key = credentials.admin_key_file.read_text().strip()
    except OSError as exc:
        print(f"error: state directory {sel.state}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if stack.edges.tls_port:
        ensure_demo_pki(
            demo_tls_dir(sel.state), [stack.site, "*." + stack.site.split(".", 1)[-1]]
        )
    procs = processes(stack, base, sel.state, credentials=credentials)
    log_dir = sel.logs
    sup = Supervisor(procs, log_dir, state_file=sel.state / "supervisor.json")

    def on_signal(signum: int, _frame: Any) -> None:
        sup.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"starting {len(procs)} processes; logs in {log_dir}", flush=True)
    # The router starts last: it must not send clients to the edges before the tiers
    # behind them answer.
    data_plane = [p for p in procs if p.tier != "router"]
    sup.start_all(data_plane)
    try:
        bad = sup.wait_healthy(stack.startup_timeout, data_plane)
        if not bad and not sup.stopping:
            routers = [p for p in procs if p.tier == "router"]
            sup.start_all(routers)
            bad = sup.wait_healthy(stack.startup_timeout, routers)
        if sup.stopping:
            return 0
        if bad:
            for p in bad:
                rc = sup.children[p.name].poll()
                state = f"exited with status {rc}" if rc is not None else "not healthy"
                print(f"error: {p.name} ({p.listen}) {state}", file=sys.stderr)
                tail = sup.log_tail(p.name)
                if tail:
                    print("  " + tail.replace("\n", "\n  "), file=sys.stderr)
            return 1
        api = next(p.admin_url for p in procs if p.tier == "control_plane")
        unregistered = _register_nodes(api, procs, admin_key)
        if unregistered:
            print(
                f"warning: could not register {', '.join(unregistered)} with the control plane",
                file=sys.stderr,
            )
        try:
            said = first_service(api, admin_key, stack, stack.startup_timeout)
        except CliError as exc:
            said = f"warning: the example service was not applied: {exc}"
        if said:
            print(said, file=sys.stderr if said.startswith("warning") else sys.stdout,
                  flush=True)
        print(f"{'name':<9} {'tier':<14} {'listens on':<28} admin", flush=True)
        for p in procs:
            print(f"{p.name:<9} {p.tier:<14} {p.listen:<28} {p.admin_url}")
        print(f"admin API key: {credentials.admin_key_file}", end="")
        every = ",".join(stack.control_plane.urls())
        if sel.net or args.state_dir or stack.control_plane.replicas > 1:
            # cdnctl looks in ./run and at 127.0.0.1:9000 unless told otherwise.
            print(f"; for cdnctl: export CDN_API={every} CDN_STATE_DIR={sel.state}")
        else:
            print(" (cdnctl uses it by default)")
        status = "cdnctl status" + (" (after those exports)" if sel.net or args.state_dir
                                    else "")
        print(
            f"stack is up: dig @{stack.router.host} -p {stack.router.port} {stack.site} A "
            f"+short; {status}; Ctrl-C stops everything",
            flush=True,
        )
        sup.write_state()
        while not sup.stopping:
            for line in sup.supervise(time.monotonic()):
                print(line, file=sys.stderr if line.startswith("error") else sys.stdout,
                      flush=True)
            time.sleep(0.1)
        return 0
    finally:
        print("stopping the stack", flush=True)
        sup.stop_all()
        print("stopped", flush=True)
