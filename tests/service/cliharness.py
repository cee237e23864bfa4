"""Shared pieces of the ``cdnctl`` tests: the CLI's parser, a live control plane on
loopback, ``cdnctl`` run in a worker thread (it blocks on urllib), and fake nodes
registered through ``cdnctl nodes add``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cdn_core.metrics import new_registry
from control_plane.app import create_app
from control_plane.cli.main import register_api
from control_plane.config import ControlPlaneConfig, PurgeConfig
from control_plane.testing import FakeNode, auth_config

Cdnctl = Callable[..., Awaitable[tuple[int, str, str]]]


def parse(api: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cdnctl")
    parser.add_argument("--api")
    register_api(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["--api", api, *argv])


async def serve_control_plane(aiohttp_server: Any, tmp_path: Path, retry_interval: float) -> str:
    """A control plane with the test credentials; its base URL."""
    config = ControlPlaneConfig(
        db=str(tmp_path / "control.db"),
        status_timeout=0.5,
        purge=PurgeConfig(node_timeout=0.5, retry_interval=retry_interval),
        auth=auth_config(tmp_path),
    )
    server = await aiohttp_server(create_app(config, registry=new_registry()))
    return str(server.make_url("")).rstrip("/")


def runner(api: str, capsys: pytest.CaptureFixture[str]) -> Cdnctl:
    """``await run("nodes", "list")`` -> ``(exit status, stdout, stderr)``."""

    async def run(*argv: str) -> tuple[int, str, str]:
        args = parse(api, list(argv))
        code = await asyncio.to_thread(args.func, args)
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def add_node(
    aiohttp_server: Any, cdnctl: Cdnctl, name: str, tier: str, **kw: Any
) -> FakeNode:
    """Serve a :class:`FakeNode` and register it with ``cdnctl nodes add``."""
    fake = FakeNode(name, tier, **kw)
    server = await aiohttp_server(fake.app())
    fake.admin_url = str(server.make_url("")).rstrip("/")
    code, out, err = await cdnctl(
        "nodes", "add", name, "--tier", tier, "--host", "127.0.0.1",
        "--port", str(server.port), "--admin-url", fake.admin_url,
    )  # fmt: skip
    assert code == 0 and f"node {name} registered" in out, err
    return fake
