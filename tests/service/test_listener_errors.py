"""Errors never echo input: every listener (the control plane, each node's admin port and
data port, the origin and its admin port, the router's admin port) answers a request it
cannot parse with a status that names the fault and a body without the bytes sent, so an
attacker's header or target is never reflected into a response."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from routerharness import running

from cdn_core.metrics import new_registry
from cdn_core.service import bound_port, start_site
from control_plane.app import create_app as create_control_plane
from control_plane.config import ControlPlaneConfig
from control_plane.testing import auth_config
from origin.app import create_app as create_origin
from origin.app import create_origin_admin_app
from origin.config import OriginConfig

MARK = b"Zq7Reflect"
MALFORMED = [
    # (request bytes, statuses allowed: the node's own wire and aiohttp differ in detail)
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + MARK * 4000 + b"\r\n\r\n", {431}),
    (b"GET /" + MARK * 4000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", {414}),
    (b"GET / HTTP/1.1\r\nHost: h\r\nBad " + MARK + b": v\r\n\r\n", {400}),
    (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: " + MARK + b"\r\n\r\n", {400}),
    (b"GET /\x01" + MARK + b" HTTP/1.1\r\nHost: h\r\n\r\n", {400}),
]


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 2):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    writer.close()
    return out


@pytest.fixture
async def listeners(tmp_path: Path, make_node, origin) -> AsyncIterator[dict[str, int]]:
    cp_config = ControlPlaneConfig(db=str(tmp_path / "control.db"), auth=auth_config(tmp_path))
    runners = [await start_site(create_control_plane(cp_config, registry=new_registry()),
                                "127.0.0.1", 0)]
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("hi")
    origin_app = create_origin(OriginConfig(root=tmp_path / "site", port=0, admin_port=0))
    runners.append(await start_site(origin_app, "127.0.0.1", 0))
    runners.append(await start_site(create_origin_admin_app(origin_app), "127.0.0.1", 0))
    node = await make_node([origin.url])
    ports = {
        "control-plane": bound_port(runners[0]),
        "origin": bound_port(runners[1]),
        "origin-admin": bound_port(runners[2]),
        "node-admin": node.admin_port,
        "node": node.port,
    }
    async with running() as router:
        ports["router-admin"] = router.admin_port
        yield ports
    for r in runners:
        await r.cleanup()


async def test_errors_never_echo_input_on_any_listener(listeners):
    for name, port in listeners.items():
        for data, statuses in MALFORMED:
            out = await _exchange(port, data)
            head, _, body = out.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            assert status in statuses, (name, data[:40], head)
            assert MARK not in out, (name, data[:40], out[:300])
            if name != "node":  # the aiohttp listeners answer JSON, as the API does
                assert json.loads(body)["error"], (name, body)
