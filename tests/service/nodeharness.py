"""Fixtures for service tests: a scriptable origin on a real loopback port, and caching
nodes (edge or mid tier) started in-process on port 0."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from cdn_core.clock import ManualClock
from cdn_core.http_cache.dates import format_http_date
from cdn_core.node.app import Node
from cdn_core.node.settings.node import NodeConfig
from cdn_core.pki import ensure_demo_pki


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"hello"
    delay: float = 0.0
    # Answer conditional requests carrying this ETag with 304 (and these headers).
    etag_304: str | None = None
    headers_304: dict[str, str] = field(default_factory=dict)
    # Send the body chunked, ``chunk_delay`` seconds apart (no Content-Length).
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    # Append this request header's value (its last line) to the body (a page that
    # reflects a header).
    echo_header: str | None = None
    # Append this query parameter's (decoded) value to the body.
    echo_query: str | None = None
    # Redirect (301, cacheable) requests whose X-Forwarded-Proto is not https to https,
    # as an origin behind a CDN does.
    https_only: bool = False


class ScriptedOrigin:
    """An aiohttp origin whose routes tests change at will; counts requests per path."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[web.Request] = []
        self.seen_headers: list[dict[str, str]] = []
        self.raw_paths: list[str] = []  # request targets as they arrived
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        self.hits[path] = self.hits.get(path, 0) + 1
        self.seen_headers.append(dict(request.headers))
        self.raw_paths.append(request.raw_path)
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="no such route")
        if route.delay:
            await asyncio.sleep(route.delay)
        # Date from the test's clock, so that ages computed from it agree (RFC 9111 4.2.3).
        date = {"Date": format_http_date(self.clock.time())} if self.clock else {}
        if route.echo_header:
            # The last line of the field, as frameworks where the last one wins do.
            echoed = (request.headers.getall(route.echo_header, [""])[-1]).encode()
            chunks = None if route.chunks is None else [*route.chunks, echoed]
            route = Route(route.status, route.headers, route.body + echoed, chunks=chunks,
                          chunk_delay=route.chunk_delay)
        if route.echo_query:
            route = Route(route.status, route.headers,
                          route.body + request.query.get(route.echo_query, "").encode())
        if route.https_only and request.headers.get("X-Forwarded-Proto") != "https":
            location = f"https://{request.host.split(':')[0]}{path}"
            return web.Response(
                status=301,
                headers={**date, "Location": location, "Cache-Control": "max-age=3600"},
            )
        if route.etag_304 and request.headers.get("If-None-Match") == route.etag_304:
            return web.Response(status=304, headers={**date, **route.headers_304})
        if route.chunks is not None:
            resp = web.StreamResponse(status=route.status, headers={**date, **route.headers})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for chunk in route.chunks:
                await resp.write(chunk)
                await asyncio.sleep(route.chunk_delay)
            await resp.write_eof()
            return resp
        return web.Response(status=route.status, headers={**date, **route.headers}, body=route.body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def origin(clock):
    o = ScriptedOrigin(clock)
    await o.start()
    yield o
    await o.stop()


@pytest.fixture
def clock():
    return ManualClock(start=time.time())


@pytest.fixture
def wire(request):
    """The protocol the ``http`` fixture speaks to nodes: ``http1``, or ``h2c`` (HTTP/2
    with prior knowledge) in modules that set ``BOTH_WIRES = True``, whose tests then run
    once over each (conftest.pytest_generate_tests)."""
    return getattr(request, "param", "http1")


@pytest.fixture
async def make_node(clock, wire):
    nodes: list[Node] = []

    async def factory(
        upstreams: list[str], *, tier: str = "edge", name: str = "edge1", **settings
    ) -> Node:
        if wire == "h2c":
            settings["tls"] = {**settings.get("tls", {}), "h2c_port": 0}
        cfg = NodeConfig.model_validate(
            {
                "tier": tier,
                "name": name,
                "port": 0,
                "admin_port": 0,
                "upstream": {"urls": upstreams, "timeout": 5, "retry_after": 1},
                **settings,
            }
        )
        node = Node(cfg, clock=clock)
        await node.start()
        nodes.append(node)
        return node

    yield factory
    for n in nodes:
        await n.stop()


class StreamReset(Exception):
    """The server reset an HTTP/2 stream (RST_STREAM): how HTTP/2 says a transfer was cut
    short, as a closed connection with too few bytes says it on HTTP/1.1."""


# What a client sees when the body it is receiving is cut short, on either wire.
TRANSFER_CUT = (aiohttp.ClientPayloadError, StreamReset)


class _H2cPool:
    """HTTP/2 connections to nodes, reused as a browser reuses one: a new one only when
    every open one is at the server's SETTINGS_MAX_CONCURRENT_STREAMS or has gone away."""

    def __init__(self) -> None:
        self.clients: dict[int, list] = {}
        self.lock = asyncio.Lock()

    async def _client(self, port: int):
        async with self.lock:  # concurrent requests share the connection being opened
            return await self._pick(port)

    async def _pick(self, port: int):
        from h2client import H2Client

        live = [
            c for c in self.clients.get(port, [])
            if not c.closed.is_set() and c.goaway is None
        ]
        self.clients[port] = live
        for c in live:
            limit = min(c.conn.remote_settings.max_concurrent_streams, 100)
            if c.conn.open_outbound_streams < limit:
                return c
        c = await H2Client().connect(port)
        live.append(c)
        return c

    async def get(self, port: int, path: str, method: str, hdrs: dict[str, str]):
        c = await self._client(port)
        authority = hdrs.pop("Host")
        fields = [(k.lower(), v) for k, v in hdrs.items()]
        r = await c.get(path, method=method, authority=authority, scheme="http", headers=fields)
        if r.reset is not None:
            raise StreamReset(f"stream reset with error code {r.reset}")
        return r.status, CIMultiDict(r.headers), r.body

    async def close(self) -> None:
        for clients in self.clients.values():
            for c in clients:
                await c.close()


@pytest.fixture
async def http(wire):
    h2c = _H2cPool()
    session = aiohttp.ClientSession(
        auto_decompress=False, skip_auto_headers=("Accept-Encoding", "User-Agent")
    )

    async def get(node_or_port, path: str, method: str = "GET", **headers: str):
        port = node_or_port if isinstance(node_or_port, int) else node_or_port.port
        hdrs = {"Host": "www.example.test", **{k.replace("_", "-"): v for k, v in headers.items()}}
        if wire == "h2c" and not isinstance(node_or_port, int):
            return await h2c.get(node_or_port.h2c_port, path, method, hdrs)
        async with session.request(
            method, f"http://127.0.0.1:{port}{path}", headers=hdrs, allow_redirects=False
        ) as r:
            # Repeated fields (Cache-Status from each tier) combined as RFC 9110 5.3 says.
            combined = CIMultiDict((k, ", ".join(r.headers.getall(k))) for k in set(r.headers))
            return r.status, combined, await r.read()

    yield get
    await session.close()
    await h2c.close()


async def raw_exchange(port: int, data: bytes, timeout: float = 2.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        pass
    writer.close()
    await writer.wait_closed()
    return b"".join(chunks)


async def raw_origin(response: bytes) -> tuple[asyncio.base_events.Server, str]:
    """An origin that reads one request head, sends ``response`` bytes, and closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


Get = Callable[..., object]


@pytest.fixture
def pki(tmp_path):
    return ensure_demo_pki(tmp_path / "tls", ["www.example.test", "127.0.0.1"])


def tls_settings(pki):
    return {"port": 0, "certificates": [{"cert_file": str(pki["cert"]),
                                         "key_file": str(pki["key"])}]}


async def https_get(port, path, ca, *, server_hostname="www.example.test", max_version=None):
    ctx = ssl.create_default_context(cafile=str(ca))
    if max_version is not None:
        ctx.maximum_version = max_version
    async with aiohttp.ClientSession() as s, s.get(
        f"https://127.0.0.1:{port}{path}", ssl=ctx, server_hostname=server_hostname,
        headers={"Host": "www.example.test"},
    ) as r:
        return r.status, r.headers, await r.read()
