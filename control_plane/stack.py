"""The one-host topology file (``configs/stack.yaml``) and the command line of each process
it describes. Pure: no processes are started here (see :mod:`control_plane.launcher`)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from cdn_core.config import StrictModel, load_config

Host = Annotated[str, Field(pattern=r"^[A-Za-z0-9.:\[\]-]{1,253}$",
                             description="an IP address or host name")]


_NET_RE = re.compile(r"^127\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$")  # no leading zeros


class NodeAddress(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    host: Host
    port: int = Field(ge=1, le=65535)
    admin_port: int = Field(ge=1, le=65535)


_CONFIG = "the service's own YAML (settings that are not topology), relative to this file"


class TierSection(StrictModel):
    """One caching tier: its settings file and its nodes, each started with its own
    address flags."""

    config: str = Field(description=_CONFIG)
    nodes: list[NodeAddress] = Field(
        min_length=1, description="list of {name, host, port, admin_port}, one per process")
    tls_port: int | None = Field(
        None, ge=1, le=65535, description="HTTPS port of each node (edges), demo certificate"
    )
    disk_cache: bool = Field(
        False, description="give each node an on-disk tier in <state_dir>/cache/<name>"
    )


class OriginSection(StrictModel):
    """The origin process."""

    config: str = Field(description=_CONFIG)
    host: str = Field("127.0.0.1", description="HTTP address")
    port: int = Field(ge=1, le=65535, description="HTTP port")
    admin_port: int = Field(ge=1, le=65535, description="admin port")
    root: str = Field(description="directory the origin serves, relative to this file")


class RouterSection(StrictModel):
    """The DNS router process (started after every node answers its health check)."""

    config: str = Field(description=_CONFIG)
    host: str = Field("127.0.0.1", description="DNS address (UDP and TCP)")
    port: int = Field(ge=1, le=65535, description="DNS port (UDP and TCP)")
    admin_port: int = Field(ge=1, le=65535, description="admin port")


class ControlPlaneSection(StrictModel):
    """The control plane process (the REST API ``cdnctl`` talks to)."""

    config: str = Field(description=_CONFIG)
    host: str = Field("127.0.0.1", description="API address")
    port: int = Field(ge=1, le=65535, description="API port")
    replicas: int = Field(1, ge=1, le=9, description="control-plane processes sharing the "
                          "database, on ports port, port+1, ... (one leads; see GET "
                          "/v1/cluster); nodes and cdnctl are given every one")
    db: str | None = Field(None, description="database URL (postgresql://user@host/db); "
                           "default: <state_dir>/control.db (SQLite)")

    def urls(self) -> list[str]:
        """Base URL of each replica, in order."""
        return [f"http://{self.host}:{self.port + i}" for i in range(self.replicas)]

    def replica_names(self) -> list[str]:
        return ["control"] + [f"control{i + 1}" for i in range(1, self.replicas)]


class StackConfig(StrictModel):
    site: str = Field("www.example.test", description="the site's host name: DNS answers it, "
                      "prewarm may name it, the demo certificate covers it")
    state_dir: str | None = Field(
        None,
        description="where the stack keeps its state (secrets, database, caches, TLS, "
        "supervisor.json), relative to this file; cdnctl's --state-dir and $CDN_STATE_DIR "
        "win over it; unset: $XDG_STATE_HOME/tiered-cdn, else ./run (with --net: "
        "net-127.X.Y under either)",
    )
    log_dir: str | None = Field(
        None, description="one log per process, relative to this file; unset: <state_dir>/logs"
    )
    startup_timeout: float = Field(30.0, gt=0, description="seconds")
    origin: OriginSection
    mid_tier: TierSection
    edges: TierSection
    router: RouterSection
    control_plane: ControlPlaneSection

    @model_validator(mode="after")
    def _no_clashes(self) -> StackConfig:
        """Every node name once, every (address, port) used by one listener only: a clash
        would otherwise surface as a process exiting after the others started."""
        names = [n.name for n in self.mid_tier.nodes + self.edges.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1} | (
            set(names) & {"origin", "router", *self.control_plane.replica_names()}))
        if dupes:
            raise ValueError(f"node names must be unique: {', '.join(dupes)}")
        seen: dict[tuple[str, int], str] = {}
        for what, host, port, proto in listeners(self):
            if proto == "udp":
                continue  # UDP beside a TCP listener of the same number is the point
            other = seen.setdefault((host, port), what)
            if other != what:
                raise ValueError(f"{what} and {other} both use {host}:{port}")
        return self


def listeners(stack: StackConfig) -> list[tuple[str, str, int, str]]:
    """Every socket the stack listens on: ``(what, host, port, "tcp" | "udp")``, where
    ``what`` names the listener (``edge1 admin``). The router answers on UDP and TCP; an
    edge's TLS port is also its HTTP/3 (UDP) port."""
    out: list[tuple[str, str, int, str]] = []
    o, r, c = stack.origin, stack.router, stack.control_plane
    out += [("origin", o.host, o.port, "tcp"), ("origin admin", o.host, o.admin_port, "tcp")]
    out += [("router", r.host, r.port, "udp"), ("router", r.host, r.port, "tcp"),
            ("router admin", r.host, r.admin_port, "tcp")]
    for i, name in enumerate(c.replica_names()):
        out.append((name if i else "control_plane", c.host, c.port + i, "tcp"))
    for section in (stack.mid_tier, stack.edges):
        for n in section.nodes:
            out += [(n.name, n.host, n.port, "tcp"),
                    (f"{n.name} admin", n.host, n.admin_port, "tcp")]
            if section.tls_port is not None:
                out += [(f"{n.name} tls", n.host, section.tls_port, "tcp"),
                        (f"{n.name} h3", n.host, section.tls_port, "udp")]
    return out


@dataclass(frozen=True)
class Process:
    """One service process: its name, tier, command line, and where it answers health."""

    name: str
    tier: str
    argv: list[str]
    health_url: str
    admin_url: str
    host: str
    port: int
    listen: str
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment (secrets go here rather than on the command line)."""


@dataclass(frozen=True)
class Credentials:
    """The one-host stack's secrets, as files in the state directory (see
    :func:`control_plane.launcher.ensure_credentials`)."""

    admin_key_file: Path
    reader_key_file: Path
    node_token_file: Path
    reader_key: str


def load_stack(path: str | Path) -> tuple[StackConfig, Path]:
    """Load ``stack.yaml``; returns the config and the directory relative paths start from.

    Raises:
        ConfigError: naming the file and the field.
    """
    return load_config(StackConfig, path, env_prefix="CDN_STACK"), Path(path).resolve().parent


def state_dir(
    stack: StackConfig | None, base: Path, flag: str | None = None,
    env: Mapping[str, str] = os.environ, net: str | None = None,
) -> Path:
    """The stack's state directory, absolute: ``flag`` (``--state-dir``), else
    ``$CDN_STATE_DIR``, else the stack file's ``state_dir`` (relative to ``base``, the
    file's directory), else ``$XDG_STATE_HOME/tiered-cdn`` (XDG Base Directory), else
    ``./run``. A stack moved to another network (``net``, :func:`on_net`) gets
    ``net-127.X.Y`` under those last two, so that it shares no database with the first."""
    if flag:
        return Path(flag).resolve()
    if env.get("CDN_STATE_DIR"):
        return Path(env["CDN_STATE_DIR"]).resolve()
    if stack is not None and stack.state_dir is not None:
        return (base / stack.state_dir).resolve()
    xdg = env.get("XDG_STATE_HOME")
    default = (Path(xdg) / "tiered-cdn") if xdg else Path("run")
    return (default / f"net-{net}" if net else default).resolve()


def log_dir(stack: StackConfig, base: Path, state: Path) -> Path:
    """Where each process's log goes: the stack file's ``log_dir``, else ``state/logs``."""
    return (base / stack.log_dir).resolve() if stack.log_dir is not None else state / "logs"


def demo_tls_dir(state: Path) -> Path:
    """Where ``cdnctl up`` keeps the local CA and the edges' demo certificate."""
    return state / "tls"


def parse_net(text: str) -> str:
    """``127.X.Y`` (a loopback /24, X and Y 0-255), returned unchanged.

    Raises:
        ValueError: naming what is wrong.
    """
    m = _NET_RE.match(text)
    if not m or any(int(octet) > 255 for octet in m.groups()):
        raise ValueError(f"must be a loopback /24 written 127.X.Y, not {text!r}")
    return text


def on_net(stack: StackConfig, net: str) -> StackConfig:
    """``stack`` moved to the loopback network ``net`` (``127.X.Y``, see
    :func:`parse_net`): its distinct addresses, in the order :func:`listeners` names
    them, become ``net.1``, ``net.2``, ...; ports stay. For the shipped stack: origin,
    mid tiers, router and control plane on ``net.1``, edges on ``net.2-4``. Two stacks
    on different networks never share a socket.

    Raises:
        ValueError: a bad ``net``, or more than 254 addresses.
    """
    parse_net(net)
    hosts = list(dict.fromkeys(host for _, host, _, _ in listeners(stack)))
    if len(hosts) > 254:
        raise ValueError(f"{len(hosts)} addresses do not fit in {net}.0/24")
    to = {h: f"{net}.{i}" for i, h in enumerate(hosts, 1)}

    def moved(section: Any) -> Any:
        return section.model_copy(update={"host": to[section.host]})

    def tier(section: TierSection) -> TierSection:
        return section.model_copy(update={"nodes": [moved(n) for n in section.nodes]})

    return stack.model_copy(update={
        "origin": moved(stack.origin), "router": moved(stack.router),
        "control_plane": moved(stack.control_plane),
        "mid_tier": tier(stack.mid_tier), "edges": tier(stack.edges),
    })


def processes(
    stack: StackConfig,
    base: Path,
    state: Path,
    python: str = sys.executable,
    credentials: Credentials | None = None,
) -> list[Process]:
    """Every process of the stack, in start order: control plane, origin, mid tiers, edges,
    router. Paths in the stack file are relative to ``base``; ``state`` is the state
    directory (:func:`state_dir`: database, disk caches, TLS). With ``credentials`` the
    control plane gets its bootstrap admin and reader keys and the node token, every
    caching node the node token and the control plane's URL (heartbeats, purge catch-up,
    rate-limit policies), and the router a read-only key for the node registry."""

    def rel(p: str) -> str:
        return str((base / p).resolve())

    cp = stack.control_plane
    # Every node and the router get all replicas (URL1,URL2): any of them will do.
    api = ",".join(cp.urls())
    db = cp.db or str(state / "control.db")
    out = []
    for i, (name, url) in enumerate(zip(cp.replica_names(), cp.urls(), strict=True)):
        port = str(cp.port + i)
        out.append(Process(
            name,
            "control_plane",
            [
                python,
                "-m",
                "control_plane",
                "--config",
                rel(cp.config),
                "--name",
                name,
                "--host",
                cp.host,
                "--port",
                port,
                *(
                    [
                        "--admin-key-file",
                        str(credentials.admin_key_file),
                        "--reader-key-file",
                        str(credentials.reader_key_file),
                        "--control-token-file",
                        str(credentials.node_token_file),
                    ]
                    if credentials
                    else []
                ),
            ],
            f"{url}/v1/healthz",
            url,
            cp.host,
            int(port),
            f"{cp.host}:{port}",
            # Prewarm and sitemaps may name only the site this stack serves. The database
            # goes in the environment: a PostgreSQL URL may carry a password.
            env={"CDN_CONTROL_PLANE__PUSH__HOSTS": json.dumps([stack.site]), "CDN_DB": db},
        ))
    o = stack.origin
    origin_admin = f"http://{o.host}:{o.admin_port}"
    out.append(
        Process(
            "origin",
            "origin",
            [
                python,
                "-m",
                "origin",
                "--config",
                rel(o.config),
                "--name",
                "origin",
                "--host",
                o.host,
                "--port",
                str(o.port),
                "--admin-port",
                str(o.admin_port),
                "--root",
                rel(o.root),
            ],
            f"{origin_admin}/healthz",
            origin_admin,
            o.host,
            o.port,
            f"{o.host}:{o.port}",
        )
    )
    for tier, module, section, upstreams in (
        ("mid", "mid_tier", stack.mid_tier, [f"http://{o.host}:{o.port}"]),
        ("edge", "edge", stack.edges, [f"http://{n.host}:{n.port}" for n in stack.mid_tier.nodes]),
    ):
        for n in section.nodes:
            admin = f"http://{n.host}:{n.admin_port}"
            argv = [
                python,
                "-m",
                module,
                "--config",
                rel(section.config),
                "--name",
                n.name,
                "--host",
                n.host,
                "--port",
                str(n.port),
                "--admin-port",
                str(n.admin_port),
            ]
            for u in upstreams:
                argv += ["--upstream", u]
            if credentials:
                argv += ["--control-plane", api]
                argv += ["--control-token-file", str(credentials.node_token_file)]
            listen = f"{n.host}:{n.port}"
            if tier == "edge":
                r = stack.router
                argv += ["--rtt-report-url", f"http://{r.host}:{r.admin_port}"]
            if section.disk_cache:
                cache_dir = state / "cache" / n.name
                argv += ["--disk-path", str(cache_dir)]
            if section.tls_port:
                tls = demo_tls_dir(state)
                argv += [
                    "--tls-port",
                    str(section.tls_port),
                    "--tls-cert",
                    str(tls / "server.pem"),
                    "--tls-key",
                    str(tls / "server-key.pem"),
                ]
                listen += f" https:{section.tls_port}"
            out.append(
                Process(
                    n.name,
                    tier,
                    argv,
                    f"{admin}/healthz",
                    admin,
                    n.host,
                    n.port,
                    listen,
                )
            )
    r = stack.router
    router_admin = f"http://{r.host}:{r.admin_port}"
    argv = [
        python,
        "-m",
        "router",
        "--config",
        rel(r.config),
        "--host",
        r.host,
        "--port",
        str(r.port),
        "--admin-port",
        str(r.admin_port),
    ]
    router_env: dict[str, str] = {}
    if credentials:
        # The registry needs a key: a read-only one, as Basic credentials in the URL, passed
        # in the environment so that it does not show in ps.
        authed = ",".join(u.replace("http://", f"http://router:{credentials.reader_key}@", 1)
                          for u in cp.urls())
        router_env["CDN_ROUTER__CONTROL_PLANE__URL"] = authed
    else:
        argv += ["--control-plane", api]
    for n in stack.edges.nodes:
        argv += ["--edge", f"{n.name}={n.host}:{n.port}:{n.admin_port}"]
    out.append(
        Process(
            "router",
            "router",
            argv,
            f"{router_admin}/healthz",
            router_admin,
            r.host,
            r.port,
            f"{r.host}:{r.port} (udp+tcp)",
            router_env,
        )
    )
    return out
