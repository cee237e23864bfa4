"""The one-host topology file (``configs/stack.yaml``) and the command line of each process
it describes. Pure: no processes are started here (see :mod:`control_plane.launcher`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from cdn_core.config import StrictModel, load_config


class NodeAddress(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    host: str
    port: int = Field(ge=1, le=65535)
    admin_port: int = Field(ge=1, le=65535)


class TierSection(StrictModel):
    config: str
    nodes: list[NodeAddress] = Field(min_length=1)


class OriginSection(StrictModel):
    config: str
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    admin_port: int = Field(ge=1, le=65535)
    root: str


class RouterSection(StrictModel):
    config: str
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    admin_port: int = Field(ge=1, le=65535)


class ControlPlaneSection(StrictModel):
    config: str
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class StackConfig(StrictModel):
    site: str = "www.example.test"
    log_dir: str = "../run/logs"
    state_dir: str = "../run"
    startup_timeout: float = Field(30.0, gt=0, description="seconds")
    origin: OriginSection
    mid_tier: TierSection
    edges: TierSection
    router: RouterSection
    control_plane: ControlPlaneSection


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


def load_stack(path: str | Path) -> tuple[StackConfig, Path]:
    """Load ``stack.yaml``; returns the config and the directory relative paths start from.

    Raises:
        ConfigError: naming the file and the field.
    """
    return load_config(StackConfig, path, env_prefix="CDN_STACK"), Path(path).resolve().parent


def processes(stack: StackConfig, base: Path, python: str = sys.executable) -> list[Process]:
    """Every process of the stack, in start order: control plane, origin, mid tiers, edges,
    router. Paths in the stack file are relative to ``base``."""

    def rel(p: str) -> str:
        return str((base / p).resolve())

    state = Path(rel(stack.state_dir))
    cp = stack.control_plane
    api = f"http://{cp.host}:{cp.port}"
    out = [
        Process(
            "control",
            "control_plane",
            [
                python,
                "-m",
                "control_plane",
                "--config",
                rel(cp.config),
                "--host",
                cp.host,
                "--port",
                str(cp.port),
                "--db",
                str(state / "control.db"),
            ],
            f"{api}/v1/healthz",
            api,
            cp.host,
            cp.port,
            f"{cp.host}:{cp.port}",
        ),
    ]
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
            out.append(
                Process(
                    n.name,
                    tier,
                    argv,
                    f"{admin}/healthz",
                    admin,
                    n.host,
                    n.port,
                    f"{n.host}:{n.port}",
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
        "--control-plane",
        api,
    ]
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
        )
    )
    return out
