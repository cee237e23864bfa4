"""The HTTP/1.1 server side of a caching node: llhttp (httptools) on an asyncio transport.

One :class:`HttpServerProtocol` per client connection parses requests into
:class:`~cdn_core.node.exchange.request.Request` objects and hands them, one at a time
and in order (pipelined requests queue), to the node's handler, with itself as the
:class:`~cdn_core.node.exchange.channel.ResponseChannel` (framing in
:mod:`cdn_core.node.wire.http1_writer`). The handler answers synchronously on a cache
hit, later on a miss. Malformed requests get 400 and the connection is closed (so no two
tiers can disagree on where a request ends); oversized heads get 431 (RFC 6585 5);
oversized bodies 413.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque

import httptools

from cdn_core.heads import plain_response
from cdn_core.node.exchange.channel import Handler
from cdn_core.node.exchange.request import Request
from cdn_core.node.settings.limits import LimitSettings
from cdn_core.node.wire.http1_writer import END_CLOSE, Http1Writer
from cdn_core.node.wire.stats import ServerStats


def closing_response(
    status: int, reason: str, message: str, retry_after: int | None = None
) -> bytes:
    """A serialised :func:`~cdn_core.heads.plain_response` that closes the
    connection (what the wire itself answers: refusals, malformed requests, timeouts)."""
    head, body = plain_response(status, reason, message, retry_after=retry_after)
    return head + END_CLOSE + body


class _Reject(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


_REQUEST_LINE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [!-~]+ HTTP/[0-9]\.[0-9]$")
# Field names as sent -> (str, lower-case str): clients send the same few spellings, and
# a lookup costs less than decoding and lower-casing. Filled until full, never evicted, so
# a client inventing names cannot grow it.
FIELD_NAME_MEMO = 1024
_FIELD_NAMES: dict[bytes, tuple[str, str]] = {}
_NO_BODY: list[bytes] = []  # shared, never appended to: most requests have no body
_REFUSAL_REASONS = {413: "body-too-large", 414: "uri-too-long", 431: "header-too-large"}
# A chunk-size line at the end of what has been read (RFC 9112 7.1): the size, then
# optional whitespace and extensions. Anchored on the CRLF before it, so a line cut by
# the window is never misread as a smaller size.
_CHUNK_SIZE_LINE = re.compile(rb"\r\n([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r\n\Z")
_CHUNK_LINE_WINDOW = 1024  # bytes of a chunk-size line looked at (extensions included)


class HttpServerProtocol(Http1Writer):
    """asyncio protocol for one client connection (see module docstring)."""

    __slots__ = (
        "_handler",
        "_limits",
        "_max_head_bytes",
        "_max_headers",
        "_header_timeout",
        "_idle_timeout",
        "_stats",
        "_parser",
        "_queue",
        "_busy",
        "_draining",
        "_url",
        "_headers",
        "_fields",
        "_head_bytes",
        "_body",
        "_body_bytes",
        "_chunk_bytes",
        "_tail",
        "_chunked",
        "_client",
        "_paused",
        "_eof",
        "_scheme",
        "_loop",
        "deadline",
        "_deadline_reason",
    )

    def __init__(self, handler: Handler, limits: LimitSettings, stats: ServerStats,
                 scheme: str = "http") -> None:
        super().__init__()
        self._handler = handler
        self._scheme = scheme
        self._limits = limits
        # The limits the hit path reads per request, as plain attributes (a pydantic
        # model's attribute costs three times as much).
        self._max_head_bytes = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._header_timeout = limits.header_timeout
        self._idle_timeout = limits.idle_timeout
        self._stats = stats
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._busy = False
        self._draining = False
        self._paused = False
        self._eof = False
        self._loop = asyncio.get_running_loop()
        # Loop time by which the current phase must end (None: no limit), checked by the
        # node's sweeper: cheaper than a timer per request on the hit path.
        self.deadline: float | None = None
        self._deadline_reason = ""
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._fields: dict[str, str] = {}
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        # Bytes of the current chunk read in this feed, -1 when its size line did not
        # arrive in this feed; _tail: the end of the previous feed (a size line can span
        # two reads). Only chunked request bodies touch either.
        self._chunk_bytes = -1
        self._tail = b""
        self._chunked = False
        self._client = ""

    @property
    def busy(self) -> bool:
        """Whether a request on this connection is being answered (the node's in-flight
        count is the number of busy connections)."""
        return self._busy

    # asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._client = peer[0] if peer else ""
        stats = self._stats
        limits = self._limits
        refused = stats.admit(self._client, limits)
        if refused is not None:
            self._refuse_connection(refused)
        else:
            self._set_deadline(limits.header_timeout, "header-timeout")
            if stats.on_connect is not None:
                stats.on_connect(transport)

    def _refuse_connection(self, reason: str) -> None:
        self._stats.on_refuse(reason)
        assert self._transport is not None
        # Retry-After: the limit is about this moment, not this client (RFC 9110 10.2.3).
        self._transport.write(closing_response(503, "Service Unavailable",
                                               "too many connections", retry_after=1))
        self.close()

    def _set_deadline(self, seconds: float, reason: str) -> None:
        self.deadline = self._loop.time() + seconds
        self._deadline_reason = reason

    def expire(self, now: float) -> None:
        """Called by the node's sweeper: end a connection whose phase outlived its limit.
        A slow request head or body gets 408 (RFC 9110 15.5.9); an idle keep-alive
        connection is closed silently."""
        if self.deadline is None or now < self.deadline or self._transport is None:
            return
        reason = self._deadline_reason
        self.deadline = None
        self._stats.on_refuse(reason)
        if reason != "idle-timeout" and not self._busy:
            self._transport.write(closing_response(408, "Request Timeout",
                                                   "request not received in time"))
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self._stats.release(self._client)
        self.deadline = None
        self._transport = None
        self._queue.clear()
        self.resume_writing()

    def eof_received(self) -> bool:
        # Half-close from the client: answer what is queued, then close (see finish).
        self._eof = True
        return bool(self._busy or self._queue)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
            if self._chunked:
                if self._chunk_bytes >= 0:
                    self._check_chunk_size(data)
                tail = data if len(data) >= _CHUNK_LINE_WINDOW else self._tail + data
                self._tail = tail[-_CHUNK_LINE_WINDOW:]
        except httptools.HttpParserUpgrade as exc:
            # The request asked to switch protocols (Upgrade: h2c, websocket). We answer
            # it as plain HTTP/1.1 (RFC 9110 7.8 lets a server ignore Upgrade); llhttp
            # stops at that point, so what follows is parsed by a fresh parser. CONNECT
            # (also reported here) is refused by the handler.
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            self._parser = httptools.HttpRequestParser(self)
            if offset < len(data) and self._transport is not None:
                self.data_received(data[offset:])
        except httptools.HttpParserInvalidMethodError:
            # A well-formed request line with a method llhttp does not know is 501
            # (RFC 9110 9.1); anything else is a malformed request line: 400.
            if _REQUEST_LINE.match(data.split(b"\r\n", 1)[0]):
                self._reject(501, "Not Implemented", "unknown request method")
            else:
                self._reject(400, "Bad Request", "malformed request line")
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._reject(cause.status, cause.reason, str(cause))
            else:
                self._reject(400, "Bad Request", "malformed request")
        except httptools.HttpParserError as exc:
            if str(exc) == "Invalid HTTP version":
                # A version llhttp does not parse (HTTP/1.2, HTTP/3.0): the version is the
                # problem, not the syntax (RFC 9110 15.6.6).
                self._reject(505, "HTTP Version Not Supported", "only HTTP/1.0 and 1.1")
            else:
                self._reject(400, "Bad Request", "malformed request")
        except _Reject as exc:
            self._reject(exc.status, exc.reason, str(exc))

    # llhttp callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.deadline = self._loop.time() + self._header_timeout
        self._deadline_reason = "header-timeout"
        self._url = b""
        self._headers = []
        self._fields = {}
        self._head_bytes = 0
        self._body = _NO_BODY
        self._body_bytes = 0
        self._chunked = False
        self._chunk_bytes = -1
        self._tail = b""

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head_bytes:
            raise _Reject(414, "URI Too Long", "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self._head_bytes = self._head_bytes + len(name) + len(value) + 4
        headers = self._headers
        if size > self._max_head_bytes:
            raise _Reject(431, "Request Header Fields Too Large", "request header too large")
        if len(headers) >= self._max_headers:
            raise _Reject(431, "Request Header Fields Too Large", "too many header fields")
        known = _FIELD_NAMES.get(name)
        if known is None:
            n = name.decode("latin-1")
            ln = n.lower()
            if len(_FIELD_NAMES) < FIELD_NAME_MEMO:
                _FIELD_NAMES[name] = (n, ln)
        else:
            n, ln = known
        v = value.decode("latin-1")
        headers.append((n, v))
        # Combined as RFC 9110 5.3 says, while the header arrives (no second pass).
        fields = self._fields
        if ln in fields:
            fields[ln] = f"{fields[ln]}, {v}"
        else:
            fields[ln] = v

    def on_headers_complete(self) -> None:
        fields = self._fields
        length = fields.get("content-length")
        if length is None and "transfer-encoding" not in fields:
            return  # no body: the message is complete now
        self.deadline = self._loop.time() + self._limits.body_timeout
        self._deadline_reason = "body-timeout"
        self._chunked = length is None
        if length is not None and length.strip().isdigit() and (
            int(length) > self._limits.max_body_bytes
        ):
            # Refuse at once rather than reading a body we will not take.
            raise _Reject(413, "Content Too Large", "request body too large")
        expect = fields.get("expect")
        if expect is not None:
            expect = expect.strip().lower()
            if expect != "100-continue":
                raise _Reject(417, "Expectation Failed", "only 100-continue is supported")
            if not self._busy and not self._queue and self._transport is not None:
                # RFC 9110 10.1.1: tell the client to send the body it is holding back.
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._body is _NO_BODY:
            self._body = []
        self._body.append(body)
        self._body_bytes += len(body)
        if self._chunk_bytes >= 0:
            self._chunk_bytes += len(body)
        if self._body_bytes > self._limits.max_body_bytes:
            raise _Reject(413, "Content Too Large", "request body too large")

    def on_chunk_header(self) -> None:
        self._chunk_bytes = 0

    def on_chunk_complete(self) -> None:
        self._chunk_bytes = -1

    def _check_chunk_size(self, data: bytes) -> None:
        """A chunk whose size line arrived in ``data`` and whose data has not all come:
        413 now when its declared size takes the body over the limit, rather than
        after the body timeout (llhttp reports a chunk's start, not its size, so the
        size is read from the line that ends where the chunk's data begins)."""
        end = len(data) - self._chunk_bytes
        window = (self._tail + data[:end])[-_CHUNK_LINE_WINDOW:]
        self._chunk_bytes = -1
        m = _CHUNK_SIZE_LINE.search(window)
        if m is None:
            return
        declared = int(m.group(1), 16)
        already = self._body_bytes - (len(data) - end)
        if already + declared > self._limits.max_body_bytes:
            raise _Reject(413, "Content Too Large", "request body too large")

    def on_message_complete(self) -> None:
        self._chunked = False
        if self._closing:
            return  # the connection is closing: nothing after that point is answered
        self.deadline = None  # the handler and the upstream timeouts take over
        p = self._parser
        fields = self._fields
        keep_alive = p.should_keep_alive()
        if keep_alive and "connection" not in fields:
            # llhttp keeps an HTTP/1.1 request alive by default and no other version it
            # accepts (0.9, 1.0, 2.0): this skips get_http_version, which formats a string.
            version = "1.1"
        else:
            version = p.get_http_version()
            if version != "1.1" and version != "1.0":
                raise _Reject(505, "HTTP Version Not Supported", "only HTTP/1.0 and 1.1")
        if "transfer-encoding" in fields and (
            fields["transfer-encoding"].strip().lower() != "chunked"
        ):
            # RFC 9112 6.1: a transfer coding we do not decode would reach the next tier
            # still encoded, so two tiers could disagree on the body: refuse it.
            raise _Reject(501, "Not Implemented", "unsupported transfer coding")
        body = self._body
        req = Request(
            p.get_method().decode("latin-1"),
            self._url.decode("latin-1"),
            self._headers,
            fields,
            version,
            keep_alive,
            b"".join(body) if body else b"",
            self._client,
            self._scheme,
        )
        stats = self._stats
        stats.requests += 1
        if not self._busy and not self._queue and not self._draining:
            # The usual case, no request waiting before this one: hand it over at once.
            if self._transport is not None:
                self._busy = True
                self._handler(req, self)
            return
        self._queue.append(req)
        if len(self._queue) > self._limits.max_pipelined and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._drain()

    # the queue, and what follows a response ------------------------------------------------
    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and not self._busy and self._transport is not None:
                req = self._queue.popleft()
                self._busy = True
                self._handler(req, self)
            if self._paused and self._transport is not None and not self._queue:
                self._paused = False
                self._transport.resume_reading()
        finally:
            self._draining = False

    def finish(self, keep_alive: bool) -> None:
        """End the current response; close the connection unless ``keep_alive``."""
        if not self._busy:
            return  # already finished (an error path after a completed response)
        self._busy = False
        if not keep_alive:
            self.close()
            return
        if self._queue:
            if self._transport is not None and self._transport.is_closing():
                return
            self._drain()
        if not self._busy:
            if self._eof:
                self.close()  # the client sent everything it will send
                return
            self.deadline = self._loop.time() + self._idle_timeout
            self._deadline_reason = "idle-timeout"

    def _reject(self, status: int, reason: str, message: str) -> None:
        self._stats.bad_requests += 1
        self._stats.on_refuse(_REFUSAL_REASONS.get(status, "bad-request"))
        if self._transport is None:
            return
        if not self._busy:
            self._transport.write(closing_response(status, reason, message))
        self._queue.clear()
        self.close()
