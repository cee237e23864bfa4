"""The one interface between the request path and a wire protocol.

The request path (:mod:`cdn_core.node.proxy`, the gates of :mod:`cdn_core.node.policy`)
answers each :class:`~cdn_core.node.exchange.request.Request` by calling a
:class:`ResponseChannel`: once :meth:`~ResponseChannel.respond` for a response whose body
is at hand, or :meth:`~ResponseChannel.start`, any number of
:meth:`~ResponseChannel.send` and then :meth:`~ResponseChannel.end` (or
:meth:`~ResponseChannel.abort`) for one that streams. Heads are
:mod:`cdn_core.heads` heads; ``lines`` are this tier's per-request fields
(``Age``, ``Cache-Status``, RFC 9111 5.1, RFC 9211), also CRLF-terminated field lines.

Framing is the channel's: the blank line ending a head, ``Connection: close``, chunked
transfer coding for a body of unknown length (HTTP/1.1), or HEADERS and DATA frames
(HTTP/2). A channel implementation is :class:`cdn_core.node.wire.http1.HttpServerProtocol`
(one per connection, answering its requests in order); the access log's
:class:`~cdn_core.node.observe.accesslog.LoggedConnection` wraps one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cdn_core.node.exchange.request import Request


class ResponseChannel(Protocol):
    """Where one response is written (see the module docstring). ``keep_alive`` False
    means the connection must not carry another request after this response."""

    @property
    def closed(self) -> bool:
        """Whether the client has gone (writes are then dropped)."""
        ...

    def interim(self, status: int, fields: list[tuple[str, str]]) -> None:
        """Send a 1xx interim response (102..199, e.g. 103 Early Hints) ahead of the final
        response of the current request (RFC 9110 15.2); the caller never sends one to
        an HTTP/1.0 client."""
        ...

    def respond(self, head: bytes, lines: bytes, body: bytes, keep_alive: bool) -> None:
        """Send a whole response and finish it. ``head`` states the body's length
        (``Content-Length``) where the message has one; ``body`` is empty for HEAD, 304
        and the like."""
        ...

    def start(self, head: bytes, lines: bytes, *, length: int | None, keep_alive: bool) -> None:
        """Send the head of a response whose body follows by :meth:`send`: ``length``
        bytes (``head`` carries that ``Content-Length``), or ``None`` when unknown;
        ``keep_alive`` as the request allows (:meth:`end` may still close)."""
        ...

    def send(self, chunk: bytes) -> None:
        """Send the next piece of a started response's body."""
        ...

    async def drain(self) -> None:
        """Wait while the client is slower than the body arrives (back-pressure), so that
        a node never buffers a whole streamed body for one client."""
        ...

    def end(self, keep_alive: bool) -> None:
        """Finish a started response (after its last :meth:`send`)."""
        ...

    def abort(self) -> None:
        """End a started response early: the body was cut short upstream, so the client
        must see an incomplete message, never a complete-looking one (RFC 9112 6.3)."""
        ...

    def close(self) -> None:
        """Close the connection (no response, or after one already finished)."""
        ...


class ForwardingChannel:
    """A :class:`ResponseChannel` that passes every call on to ``conn``: the base of the
    wrappers that stand in for a request's channel (the access log's, a service's
    response edits), each overriding what it looks at or changes."""

    __slots__ = ("_conn",)

    def __init__(self, conn: ResponseChannel) -> None:
        self._conn = conn

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def interim(self, status: int, fields: list[tuple[str, str]]) -> None:
        self._conn.interim(status, fields)

    def respond(self, head: bytes, lines: bytes, body: bytes, keep_alive: bool) -> None:
        self._conn.respond(head, lines, body, keep_alive)

    def start(self, head: bytes, lines: bytes, *, length: int | None, keep_alive: bool) -> None:
        self._conn.start(head, lines, length=length, keep_alive=keep_alive)

    def send(self, chunk: bytes) -> None:
        self._conn.send(chunk)

    async def drain(self) -> None:
        await self._conn.drain()

    def end(self, keep_alive: bool) -> None:
        self._conn.end(keep_alive)

    def abort(self) -> None:
        self._conn.abort()

    def close(self) -> None:
        self._conn.close()


Handler = Callable[[Request, ResponseChannel], None]
"""What a wire protocol calls with each request (the node's request path)."""

Gate = Callable[[Request, ResponseChannel], bool]
"""A policy hook in front of the request path: True lets the request through; False means
the gate answered it (or will, from a task) itself."""
