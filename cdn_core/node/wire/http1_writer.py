"""The response side of an HTTP/1.1 connection: framing of what the request path writes
(:class:`~cdn_core.node.exchange.channel.ResponseChannel`) onto an asyncio transport,
with back-pressure from the transport's write buffer.

A head is ended here (``Connection: close`` when the connection will not be reused,
RFC 9112 9.6); a body of unknown length is sent with the chunked transfer coding
(RFC 9112 7.1). :class:`~cdn_core.node.wire.http1.HttpServerProtocol` adds the request
side and decides, in :meth:`Http1Writer.finish`, what follows a response.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

# What ends a response head after this request's lines: kept alive, or closing.
END_KEEP_ALIVE = b"\r\n"
END_CLOSE = b"Connection: close\r\n\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
LAST_CHUNK = b"0\r\n\r\n"
# A small response goes out as one joined buffer: cheaper than the transport's writelines
# for a few short pieces (measured: +10% hits/s at 1 KiB). A larger body is not copied.
JOIN_MAX_BYTES = 16 * 1024


class Http1Writer(asyncio.Protocol):
    """Writes responses to ``_transport`` (set by the subclass when connected)."""

    __slots__ = ("_transport", "_write_waiter", "_chunked", "_closing", "closed", "alt_svc",
                 "__weakref__")

    def __init__(self) -> None:
        self._transport: Any = None
        # Field lines every response on this connection carries (Alt-Svc on TLS
        # listeners when HTTP/3 is on), CRLF-terminated; usually empty.
        self.alt_svc = b""
        self._write_waiter: asyncio.Future[None] | None = None
        self._chunked = False  # the started response's body is chunk-framed
        # Set by close(): requests parsed after it (pipelined behind a refused one, or
        # CONNECT's would-be tunnel data) are dropped, never handed to the handler.
        self._closing = False
        self.closed = False

    def finish(self, keep_alive: bool) -> None:
        """End the current response; what follows is the connection's decision."""
        raise NotImplementedError

    # ResponseChannel ---------------------------------------------------------------------
    def interim(self, status: int, fields: list[tuple[str, str]]) -> None:
        transport = self._transport
        if transport is None or self.closed:
            return
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Informational"
        lines = "".join(f"{n}: {v}\r\n" for n, v in fields)
        transport.write(f"HTTP/1.1 {status} {reason}\r\n{lines}\r\n".encode("latin-1"))

    def respond(self, head: bytes, lines: bytes, body: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is not None:
            end = END_KEEP_ALIVE if keep_alive else END_CLOSE
            if len(body) <= JOIN_MAX_BYTES:
                transport.write(b"".join((head, lines, self.alt_svc, end, body)))
            else:
                transport.writelines((b"".join((head, lines, self.alt_svc, end)), body))
        self.finish(keep_alive)

    def start(self, head: bytes, lines: bytes, *, length: int | None, keep_alive: bool) -> None:
        transport = self._transport
        self._chunked = length is None
        if transport is not None:
            transport.write(
                b"".join(
                    (
                        head,
                        CHUNKED if length is None else b"",
                        lines,
                        self.alt_svc,
                        END_KEEP_ALIVE if keep_alive else END_CLOSE,
                    )
                )
            )

    def send(self, chunk: bytes) -> None:
        transport = self._transport
        if transport is None or not chunk:
            return  # (an empty chunk would end a chunked body)
        if self._chunked:
            transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            transport.write(chunk)

    def end(self, keep_alive: bool) -> None:
        if self._chunked:
            self._chunked = False
            if self._transport is not None and not self.closed:
                self._transport.write(LAST_CHUNK)
        self.finish(keep_alive and not self.closed)

    def abort(self) -> None:
        self._chunked = False
        self.close()
        self.finish(False)

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    # back-pressure -------------------------------------------------------------------------
    def pause_writing(self) -> None:
        if self._write_waiter is None:
            self._write_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        if self._write_waiter is not None:
            await self._write_waiter
