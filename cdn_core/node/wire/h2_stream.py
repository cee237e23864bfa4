"""One HTTP/2 stream as a :class:`~cdn_core.node.exchange.channel.ResponseChannel`: the
response's HEADERS and its body queued for :class:`~cdn_core.node.wire.h2.H2ServerProtocol`
to send within the flow-control windows (RFC 9113 5.2)."""

from __future__ import annotations

import asyncio
import collections
from typing import Protocol

import h2.errors

from cdn_core.node.wire.fields import interim_fields, response_fields

SEND_BUFFER_BYTES = 256 * 1024  # queued per stream before drain() waits


class StreamConnection(Protocol):
    """What a stream needs of its connection (:class:`~cdn_core.node.wire.h2.H2ServerProtocol`)."""

    loop: asyncio.AbstractEventLoop
    gone: bool
    alt_svc: bytes

    def send_headers(
        self, stream: H2Stream, headers: list[tuple[bytes, bytes]], *, end_stream: bool
    ) -> None: ...

    def push(self, stream: H2Stream) -> None: ...

    def reset_stream(self, stream: H2Stream, code: h2.errors.ErrorCodes) -> None: ...

    def stream_done(self, stream: H2Stream) -> None: ...


class H2Stream:
    """One stream's :class:`~cdn_core.node.exchange.channel.ResponseChannel`."""

    __slots__ = ("conn", "stream_id", "pending", "queued", "ending", "finished", "reset",
                 "_writable", "progress_at")

    def __init__(self, conn: StreamConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.pending: collections.deque[memoryview] = collections.deque()
        self.queued = 0  # bytes in pending
        self.ending = False  # end the stream once pending is sent
        self.finished = False  # the response is complete (or abandoned)
        self.reset = False  # the client reset the stream
        self._writable: asyncio.Event | None = None
        self.progress_at = conn.loop.time()

    @property
    def closed(self) -> bool:
        return self.reset or self.conn.gone

    def interim(self, status: int, fields: list[tuple[str, str]]) -> None:
        if self.closed or self.finished:
            return
        self.conn.send_headers(self, interim_fields(status, fields), end_stream=False)

    def respond(self, head: bytes, lines: bytes, body: bytes, keep_alive: bool) -> None:
        if self.closed or self.finished:
            return
        headers = response_fields(head, lines + self.conn.alt_svc)
        self.conn.send_headers(self, headers, end_stream=not body)
        if body:
            self.pending.append(memoryview(body))
            self.queued += len(body)
            self.ending = True
            self.conn.push(self)  # the body and END_STREAM in one DATA frame when it fits
        else:
            self._done()

    def start(self, head: bytes, lines: bytes, *, length: int | None, keep_alive: bool) -> None:
        if self.closed or self.finished:
            return
        headers = response_fields(head, lines + self.conn.alt_svc)
        self.conn.send_headers(self, headers, end_stream=False)

    def send(self, chunk: bytes) -> None:
        if self.closed or self.finished or not chunk:
            return
        self.pending.append(memoryview(chunk))
        self.queued += len(chunk)
        self.conn.push(self)

    async def drain(self) -> None:
        while self.queued > SEND_BUFFER_BYTES and not self.closed:
            if self._writable is None:
                self._writable = asyncio.Event()
            await self._writable.wait()

    def end(self, keep_alive: bool) -> None:
        if self.closed or self.finished:
            return
        self.ending = True
        self.conn.push(self)

    def abort(self) -> None:
        """A body cut short upstream: the client sees the stream reset (RFC 9113 8.1)."""
        if not self.finished:
            self.conn.reset_stream(self, h2.errors.ErrorCodes.INTERNAL_ERROR)

    def close(self) -> None:
        """No (more) response on this stream: reset it; the connection lives on."""
        if not self.finished:
            self.conn.reset_stream(self, h2.errors.ErrorCodes.CANCEL)

    # the connection's side ---------------------------------------------------------------
    def wake(self) -> None:
        if self._writable is not None and (self.queued <= SEND_BUFFER_BYTES or self.closed):
            self._writable.set()
            self._writable = None

    def _done(self) -> None:
        self.finished = True
        self.conn.stream_done(self)
