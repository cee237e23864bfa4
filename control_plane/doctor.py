"""``cdnctl doctor``: what on this machine stops the stack, or a part of it, from running.

One line per check, ``ok``, ``warning`` or ``error``, with the fix; exit status 1 when any
check is an error (warnings are optional parts that are missing). The checks:

- the Python version (3.11 or later, as ``pyproject.toml`` requires);
- the stack file (``--config``, ``--net``, ``--state-dir`` as for ``cdnctl up``) loads;
- every address and port of the stack is free, or held by the stack itself when it is
  running; a port held by another process names it (PID and command line, from
  ``/proc/net/{tcp,udp}[6]`` and ``/proc/PID/fd`` on Linux);
- the 127.0.1.x loopback addresses the edges use can be bound (Linux routes all of
  127.0.0.0/8 to ``lo``; macOS needs ``sudo ifconfig lo0 alias 127.0.1.1 up``, one per
  address);
- which optional tools are present and what each enables (:data:`TOOLS`);
- the state directory's secrets (``*.key``, ``node.token``) are readable by their owner
  only (mode 0600), as ``cdnctl up`` writes them;
- whether a running stack's control plane answers ``/v1/healthz``.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdn_core.config import load_config
from cdn_core.errors import ConfigError
from cdn_core.node.settings.node import NodeConfig
from control_plane import stack_cli
from control_plane.config import ControlPlaneConfig
from control_plane.netcheck import bind_error
from control_plane.stack import StackConfig, listeners

MIN_PYTHON = (3, 11)

# Optional tools: (command, Debian package, what it enables).
TOOLS: tuple[tuple[str, str, str], ...] = (
    ("curl", "curl", "the README's walkthrough (curl --http2 against the edges)"),
    ("dig", "bind9-dnsutils", "the README's walkthrough (asking the DNS router)"),
    ("redis-server", "redis-server", "cluster-wide rate limits and their tests"),
    ("chromium", "chromium", "the status page test (headless browser)"),
    ("psql", "postgresql", "the control plane on PostgreSQL and its tests"),
    ("zstd", "zstd", "the trace replay and its test (python -m bench.replay)"),
    ("h2load", "nghttp2-client", "the HTTP/2 benchmark (bench/run.sh h2)"),
    ("nginx", "nginx", "the benchmarks beside nginx (bench/run.sh)"),
    ("varnishd", "varnish", "the benchmarks beside Varnish (bench/run.sh)"),
    ("pdns_server", "pdns-server", "the DNS benchmark beside PowerDNS (bench/run.sh dns)"),
    ("docker", "docker.io", "docker-compose.yml and cdnctl chaos run --compose"),
)
SECRET_NAMES = ("admin.key", "reader.key", "node.token")


@dataclass(frozen=True)
class Check:
    """One line of the report: ``level`` is ``ok``, ``warning`` or ``error``."""

    level: str
    name: str
    message: str
    fix: str = ""

    def line(self) -> str:
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.level:<8}{self.name}: {self.message}{fix}"


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    shown = ".".join(map(str, version))
    if tuple(version[:2]) >= MIN_PYTHON:
        return Check("ok", "python", shown)
    need = ".".join(map(str, MIN_PYTHON))
    return Check("error", "python", f"{shown} is older than {need}",
                 f"install Python {need} or later and the project into its venv")


# Which process holds a port ----------------------------------------------------------------
def _proc_net_entries(proto: str) -> list[tuple[str, int, str, int]]:
    """``(local address hex, port, state hex, inode)`` of every socket of ``proto``."""
    out = []
    for name in (proto, proto + "6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            addr, port = parts[1].split(":")
            out.append((addr, int(port, 16), parts[3], int(parts[9])))
    return out


def _hex_address(host: str) -> set[str]:
    """The ``/proc/net`` spellings of ``host`` and of the wildcard address a socket on
    every address would show (IPv4: little-endian hex; IPv6 left to the wildcard)."""
    try:
        return {socket.inet_aton(host)[::-1].hex().upper(), "00000000"}
    except OSError:
        return set()


def holder(port: int, proto: str = "tcp", host: str | None = None) -> str | None:
    """``"pid N (command line)"`` of the process that listens on ``port`` (``tcp``, in
    state LISTEN) or is bound to it (``udp``) on ``host`` (or any address when None), or
    None when it cannot be told (not Linux, or another user's process)."""
    wanted_addr = _hex_address(host) if host else set()
    inodes = {inode for addr, p, state, inode in _proc_net_entries(proto)
              if p == port and inode and (proto == "udp" or state == "0A")
              and (not wanted_addr or addr in wanted_addr or len(addr) > 8)}
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                    cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                    return f"pid {pid} ({cmd[:80]})"
            except OSError:
                continue
    return None


def check_listeners(
    entries: list[tuple[str, str, int, str]], *, stack_running: bool
) -> list[Check]:
    """One check per listener of the stack that is not free; one ``ok`` for the rest."""
    out: list[Check] = []
    for what, host, port, proto in entries:
        exc = bind_error(host, port, proto)
        if exc is None:
            continue
        where = f"{host}:{port}/{proto}"
        if exc.errno == errno.EADDRNOTAVAIL:
            out.append(Check("error", f"address {host}", f"{where} ({what}): no such "
                             "local address", f"sudo ifconfig lo0 alias {host} up (macOS)"))
        elif exc.errno == errno.EADDRINUSE:
            who = holder(port, proto, host) or "another process"
            if stack_running:
                out.append(Check("ok", f"port {where}", f"{what}: held by the running "
                                 f"stack, {who}"))
            else:
                out.append(Check("error", f"port {where}", f"{what}: in use by {who}",
                                 "stop that process, or run a second stack beside it: "
                                 "cdnctl up --net auto (or --net 127.X.Y)"))
        else:
            out.append(Check("error", f"port {where}", f"{what}: {exc.strerror}"))
    if not out:
        out.append(Check("ok", "ports", f"all {len(entries)} listeners of the stack are free"))
    return out


def check_loopback(addresses: list[str]) -> Check:
    """Whether each 127.0.1.x (any non-127.0.0.1 loopback) address can be bound."""
    missing = [a for a in addresses if a.startswith("127.") and a != "127.0.0.1"
               and (e := bind_error(a, 0, "tcp")) is not None
               and e.errno == errno.EADDRNOTAVAIL]
    if missing:
        return Check("error", "loopback", f"cannot bind {', '.join(missing)}",
                     "; ".join(f"sudo ifconfig lo0 alias {a} up" for a in missing)
                     + " (macOS; Linux routes all of 127.0.0.0/8 to lo)")
    shown = ", ".join(sorted({a for a in addresses if a.startswith("127.")}))
    return Check("ok", "loopback", f"{shown} can be bound")


def check_tools(path: str | None = None) -> list[Check]:
    out = []
    for command, package, enables in TOOLS:
        found = shutil.which(command, path=path)
        if found:
            out.append(Check("ok", f"tool {command}", found))
        else:
            out.append(Check("warning", f"tool {command}", f"missing: needed for {enables}",
                             f"apt-get install {package}"))
    return out


def check_secrets(state: Path) -> list[Check]:
    out = []
    for name in SECRET_NAMES:
        path = state / name
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            continue  # cdnctl up writes them on its first start
        except OSError as exc:
            out.append(Check("error", f"secret {path}", exc.strerror or str(exc)))
            continue
        if mode & 0o077:
            out.append(Check("error", f"secret {path}", f"mode {mode:o}: readable by others",
                             f"chmod 600 {path}"))
        else:
            out.append(Check("ok", f"secret {path}", f"mode {mode:o}"))
    if not out:
        out.append(Check("ok", "secrets", f"none yet in {state} (cdnctl up creates them)"))
    return out


def control_plane_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/v1/healthz", timeout=timeout) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def check_service_configs(stack: StackConfig, base: Path) -> list[Check]:
    """The settings files of the caching tiers and the control plane load (the origin's
    and the router's are checked by those services when they start)."""
    files = [(stack.mid_tier.config, NodeConfig), (stack.edges.config, NodeConfig),
             (stack.control_plane.config, ControlPlaneConfig)]
    out = []
    for name, model in files:
        path = base / name
        try:
            load_config(model, path)
        except ConfigError as exc:
            out.append(Check("error", "settings", str(exc), f"fix {path}"))
    if not out:
        out.append(Check("ok", "settings", "the tiers' and the control plane's files load"))
    return out


def run_checks(args: argparse.Namespace, *, path: str | None = None) -> list[Check]:
    """Every check, in report order (see the module docstring), of the stack ``args``
    select (:func:`control_plane.stack_cli.select`)."""
    checks = [check_python()]
    try:
        sel = stack_cli.select(args)
    except ConfigError as exc:
        checks.append(Check("error", "stack file", str(exc), "fix the file, or pass --config"))
        return checks + check_tools(path)
    stack = sel.stack
    checks.append(Check("ok", "stack file", str(sel.file)
                        + (f" on {sel.net}.0/24" if sel.net else "")))
    checks += check_service_configs(stack, sel.base)
    cp = stack.control_plane
    running = control_plane_answers(cp.host, cp.port)
    checks.append(Check("ok", "running stack", f"control plane at {cp.host}:{cp.port} "
                        + ("answers" if running else "is not running (cdnctl up starts it)")))
    entries = listeners(stack)
    checks.append(check_loopback(sorted({host for _, host, _, _ in entries})))
    checks += check_listeners(entries, stack_running=running)
    checks += check_tools(path)
    checks += check_secrets(sel.state)
    return checks


def run(args: argparse.Namespace) -> int:
    checks = run_checks(args)
    for c in checks:
        print(c.line())
    errors = sum(c.level == "error" for c in checks)
    warnings = sum(c.level == "warning" for c in checks)
    print(f"{errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check this machine for what the stack needs")
    stack_cli.add_arguments(p)
    p.set_defaults(func=run)
