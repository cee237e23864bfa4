"""The origin test bench shared by test_origin.py and test_origin_ops.py: a content root
with pages, a dotfile and symlinks in and out of it (the ``site`` fixture), an origin app
on aiohttp's test server, and raw requests aiohttp's client would normalise."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from cdn_core.metrics import new_registry
from origin.app import create_app
from origin.config import OriginConfig

REPO = Path(__file__).resolve().parents[2]
MTIME = 1_600_000_000  # a fixed past mtime, so Last-Modified is known and "strong"
INDEX = b"<!DOCTYPE html><title>home</title><p>" + b"hello origin " * 20 + b"</p>\n"
CSS = b"body { color: #222; }\n" * 10
NOT_FOUND = b"<!DOCTYPE html><title>404</title><p>not here</p>\n"
SECRET = b"TOP-SECRET-DO-NOT-SERVE"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A root with pages, a subdirectory, a dotfile, and symlinks in and out of the root."""
    root = tmp_path / "site"
    files = {
        "index.html": INDEX,
        "about.html": b"<!DOCTYPE html><title>about</title>\n",
        "404.html": NOT_FOUND,
        "css/site.css": CSS,
        "images/a.jpg": bytes(range(256)) * 4,
        "robots.txt": b"User-agent: *\n",
        "sub/index.html": b"<!DOCTYPE html><title>sub</title>\n",
        "nodir/page.html": b"<p>a directory without an index</p>\n",
        ".secret": SECRET,
        "empty.txt": b"",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))
    (tmp_path / "outside.txt").write_bytes(SECRET)
    (root / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (root / "innocent.txt").symlink_to(root / ".secret")
    (root / "alias.html").symlink_to(root / "about.html")
    return root


async def start(aiohttp_client, root: Path, **settings) -> tuple[TestClient, web.Application]:
    app = create_app(OriginConfig(root=root, **settings), registry=new_registry())
    return await aiohttp_client(app), app


async def raw_status(client: TestClient, raw_path: str) -> tuple[int, bytes]:
    """Send ``raw_path`` byte for byte (aiohttp's client would normalise it)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            f"GET {raw_path} HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def etag_of(client: TestClient, path: str = "/index.html") -> str:
    """The ``ETag`` the origin gives ``path`` (from a HEAD request)."""
    resp = await client.head(path)
    return str(resp.headers["ETag"])
