"""The HTTP/1.1 server side of a caching node: llhttp (httptools) on an asyncio transport.

One :class:`HttpServerProtocol` per client connection parses requests into
:class:`Request` objects and hands them, one at a time and in order (pipelined requests
queue), to the node's handler. The handler writes the response with :meth:`write` /
:meth:`writelines` and calls :meth:`finish` — synchronously on a cache hit, later on a
miss. Malformed requests get 400 and the connection is closed (so no two tiers can disagree
on where a request ends); oversized heads get 431 (RFC 6585 5); oversized bodies 413.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httptools

from cdn_core.node.config import LimitSettings


class Request:
    """One parsed request. ``fields`` maps lower-case field names to combined values
    (RFC 9110 5.3); ``headers`` keeps the raw lines as ``(str, str)`` in order; ``target``
    is the request target as sent (origin-form ``/path?query``)."""

    __slots__ = ("method", "target", "headers", "fields", "version", "keep_alive", "body", "client")

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        fields: dict[str, str],
        version: str,
        keep_alive: bool,
        body: bytes,
        client: str,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.fields = fields
        self.version = version
        self.keep_alive = keep_alive
        self.body = body
        self.client = client


@dataclass
class ServerStats:
    """Live counts shared by every connection of a node (for ``/status`` and the router's
    load decisions)."""

    connections: int = 0
    in_flight: int = 0
    requests: int = 0
    bad_requests: int = 0


def simple_response(status: int, reason: str, message: str, *, close: bool) -> bytes:
    """A small ``text/plain`` response, serialised."""
    body = (message + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
    )
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


class _Reject(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


Handler = Callable[[Request, "HttpServerProtocol"], None]


class HttpServerProtocol:
    """asyncio protocol for one client connection (see module docstring)."""

    __slots__ = (
        "_handler",
        "_limits",
        "_stats",
        "_transport",
        "_parser",
        "_queue",
        "_busy",
        "_draining",
        "_url",
        "_headers",
        "_head_bytes",
        "_body",
        "_client",
        "closed",
        "_paused",
        "_write_waiter",
        "__weakref__",
    )

    def __init__(self, handler: Handler, limits: LimitSettings, stats: ServerStats) -> None:
        self._handler = handler
        self._limits = limits
        self._stats = stats
        self._transport = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._busy = False
        self._draining = False
        self._paused = False
        self._write_waiter: asyncio.Future[None] | None = None
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._client = ""
        self.closed = False

    # asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._client = peer[0] if peer else ""
        self._stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self._stats.connections -= 1
        self._transport = None
        self._queue.clear()
        self.resume_writing()

    def eof_received(self) -> bool:
        # Half-close from the client: answer what is queued, then close.
        return bool(self._busy or self._queue)

    def pause_writing(self) -> None:
        if self._write_waiter is None:
            self._write_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark, so that a
        slow client does not make the node buffer a whole streamed body for it."""
        if self._write_waiter is not None:
            await self._write_waiter

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "Bad Request", "protocol upgrade is not supported")
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._reject(cause.status, cause.reason, str(cause))
            else:
                self._reject(400, "Bad Request", "malformed request")
        except httptools.HttpParserError:
            self._reject(400, "Bad Request", "malformed request")
        except _Reject as exc:
            self._reject(exc.status, exc.reason, str(exc))

    # llhttp callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._limits.max_header_bytes:
            raise _Reject(414, "URI Too Long", "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._limits.max_header_bytes:
            raise _Reject(431, "Request Header Fields Too Large", "request header too large")
        if len(self._headers) >= self._limits.max_headers:
            raise _Reject(431, "Request Header Fields Too Large", "too many header fields")
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        if sum(map(len, self._body)) > self._limits.max_body_bytes:
            raise _Reject(413, "Content Too Large", "request body too large")

    def on_message_complete(self) -> None:
        p = self._parser
        fields: dict[str, str] = {}
        for name, value in self._headers:
            lname = name.lower()
            prev = fields.get(lname)
            fields[lname] = value if prev is None else f"{prev}, {value}"
        req = Request(
            p.get_method().decode("latin-1"),
            self._url.decode("latin-1"),
            self._headers,
            fields,
            p.get_http_version(),
            p.should_keep_alive(),
            b"".join(self._body),
            self._client,
        )
        self._stats.requests += 1
        self._queue.append(req)
        if len(self._queue) > self._limits.max_pipelined and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._drain()

    # response side -----------------------------------------------------------------------
    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and not self._busy and self._transport is not None:
                req = self._queue.popleft()
                self._busy = True
                self._stats.in_flight += 1
                self._handler(req, self)
            if self._paused and self._transport is not None and not self._queue:
                self._paused = False
                self._transport.resume_reading()
        finally:
            self._draining = False

    def write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def writelines(self, parts: list[bytes] | tuple[bytes, ...]) -> None:
        if self._transport is not None:
            self._transport.writelines(parts)

    def finish(self, keep_alive: bool) -> None:
        """End the current response; close the connection unless ``keep_alive``."""
        if not self._busy:
            return  # already finished (an error path after a completed response)
        self._stats.in_flight -= 1
        self._busy = False
        if not keep_alive:
            self.close()
            return
        if self._transport is not None and self._transport.is_closing():
            return
        self._drain()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _reject(self, status: int, reason: str, message: str) -> None:
        self._stats.bad_requests += 1
        if self._transport is None:
            return
        if not self._busy:
            self._transport.write(simple_response(status, reason, message, close=True))
        self._queue.clear()
        self._transport.close()
