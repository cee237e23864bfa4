"""The HTTP/2 server side of a caching node (RFC 9113): the ``h2`` library (python-hyper)
frames and HPACK-codes on an asyncio transport; each stream is a
:class:`~cdn_core.node.exchange.channel.ResponseChannel` of its own, so a stream's
request goes through exactly the request path an HTTP/1.1 request does.

Requests: ``:authority`` becomes ``Host``, cookie crumbs are joined with ``"; "`` (RFC
9113 8.2.3), the body is read whole (within ``limits.max_body_bytes``, else 413). h2
validates what arrives (pseudo-headers, upper-case or connection-specific fields, CR/LF/NUL,
``content-length`` against the DATA received); a violation is a connection error
(GOAWAY ``PROTOCOL_ERROR``), so nothing malformed ever reaches the request path or an
upstream.

Responses: heads arrive as HTTP/1.1-syntax field blocks (:mod:`cdn_core.heads`) and
are sent as HEADERS without the connection-specific fields; bodies go out as DATA within
the peer's stream and connection windows (a large body is sent from the stored bytes,
never copied whole; :meth:`H2Stream.drain` waits while a stream has more than
``SEND_BUFFER_BYTES`` queued).

Defences, each counted in ``cdn_refused_total{reason}``: more than
``limits.h2_max_resets_per_second`` streams reset by the client in a second (rapid reset,
CVE-2023-44487), or that many SETTINGS, PING or empty DATA frames, end the connection
with GOAWAY ``ENHANCE_YOUR_CALM``; a header list over ``limits.max_header_bytes``
(HPACK bomb) or a header block over 64 CONTINUATION frames (h2's backlog) is a connection
error; streams past ``limits.h2_max_streams`` are refused by SETTINGS. A stream whose
client stops reading (zero window) for ``limits.body_timeout`` is reset; an idle
connection is closed after ``limits.idle_timeout`` with GOAWAY; :meth:`close` sends
GOAWAY and lets streams in flight finish (a graceful stop).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

from cdn_core.heads import plain_response
from cdn_core.node.exchange.channel import Handler
from cdn_core.node.settings.limits import LimitSettings
from cdn_core.node.wire.fields import request_from_fields
from cdn_core.node.wire.h2_stream import H2Stream
from cdn_core.node.wire.stats import ServerStats

CLOSE_GRACE_SECONDS = 5.0  # streams in flight at close() get this long to finish


class _Incoming:
    """A request whose body is still arriving."""

    __slots__ = ("headers", "body", "size")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body: list[bytes] = []
        self.size = 0


class H2ServerProtocol(asyncio.Protocol):
    """asyncio protocol for one HTTP/2 connection (see the module docstring)."""

    def __init__(
        self,
        handler: Handler,
        limits: LimitSettings,
        stats: ServerStats,
        scheme: str = "https",
    ) -> None:
        self._handler = handler
        self._limits = limits
        self._stats = stats
        self._scheme = scheme
        self.loop = asyncio.get_running_loop()
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=True,
            normalize_inbound_headers=True,
            # What we send is built by response_fields from a parsed head: names lower-case,
            # values stripped, no CR/LF, no connection-specific fields; h2 checking each
            # again cost about a tenth of a hit's CPU.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = h2.connection.H2Connection(config=config)
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limits.h2_max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_bytes,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        # Applied to the decoder at once: h2 would apply it only when the client
        # acknowledges our SETTINGS, after its first requests (HPACK bomb).
        self._h2.decoder.max_header_list_size = limits.max_header_bytes
        self._transport: Any = None
        self._client = ""
        self._incoming: dict[int, _Incoming] = {}
        self._streams: dict[int, H2Stream] = {}
        self._paused = False
        self._closing = False
        self._released = False
        self.alt_svc = b""  # field lines every response carries (see Http1Writer.alt_svc)
        self.gone = False  # the transport is closed or closing: nothing more is sent
        self._window_start = 0.0
        # True while data_received handles a read's frames: the responses answered from
        # the cache meanwhile go out in one transport write (one TLS record run), not one
        # per frame.
        self._batching = False
        self._flood: collections.Counter[str] = collections.Counter()
        self.deadline: float | None = None  # idle: when the connection is closed

    @property
    def busy(self) -> bool:
        return bool(self._streams)

    # asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._client = peer[0] if peer else ""
        reason = self._stats.admit(self._client, self._limits)
        if reason is not None:
            self._stats.on_refuse(reason)
            self._h2.initiate_connection()
            self._h2.close_connection(h2.errors.ErrorCodes.REFUSED_STREAM)
            transport.write(self._h2.data_to_send())
            transport.close()
            return
        if self._stats.on_connect is not None:
            self._stats.on_connect(transport)
        self._h2.initiate_connection()
        transport.write(self._h2.data_to_send())
        self._idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if not self._released:
            self._released = True
            self._stats.release(self._client)
        self._transport = None
        self._incoming.clear()
        for stream in list(self._streams.values()):
            stream.wake()
        self._streams.clear()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.DenialOfServiceError:
            self._fail("h2-header-too-large", h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            return
        except h2.exceptions.TooManyStreamsError:
            self._fail("h2-too-many-streams", h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        except h2.exceptions.ProtocolError:
            self._stats.bad_requests += 1
            self._fail("h2-protocol-error", h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        self._batching = True
        try:
            for event in events:
                if self._transport is None or self.gone:
                    return
                self._on_event(event)
        finally:
            self._batching = False
        self._write()

    # events ------------------------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self.deadline = None
            if event.stream_ended is not None:
                self._dispatch(event.stream_id, event.headers, b"")
            else:
                self._incoming[event.stream_id] = _Incoming(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.StreamEnded):
            incoming = self._incoming.pop(event.stream_id, None)
            if incoming is not None:
                self._dispatch(event.stream_id, incoming.headers, b"".join(incoming.body))
        elif isinstance(event, h2.events.StreamReset):
            self._incoming.pop(event.stream_id, None)
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                stream.reset = True
                stream.finished = True
                stream.pending.clear()
                stream.wake()
            if event.remote_reset and self._flooded("h2-rapid-reset"):
                return
            self._idle()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            if isinstance(event, h2.events.RemoteSettingsChanged) and self._flooded(
                "h2-settings-flood"
            ):
                return
            self.flush()
        elif isinstance(event, h2.events.PingReceived):
            self._flooded("h2-ping-flood")
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.close()

    def _on_data(self, event: h2.events.DataReceived) -> None:
        sid = event.stream_id
        if event.flow_controlled_length:
            self._h2.acknowledge_received_data(event.flow_controlled_length, sid)
        if not event.data and event.stream_ended is None and self._flooded("h2-empty-data"):
            return
        incoming = self._incoming.get(sid)
        if incoming is None:
            return  # a stream already answered (413) or reset
        incoming.size += len(event.data)
        if incoming.size > self._limits.max_body_bytes:
            del self._incoming[sid]
            self._stats.on_refuse("body-too-large")
            stream = self._open_stream(sid)
            head, body = plain_response(413, "Content Too Large", "request body too large")
            stream.respond(head, b"", body, False)
            return
        incoming.body.append(event.data)

    def _flooded(self, reason: str) -> bool:
        """Count one frame of ``reason`` in the current second; past the limit the
        connection ends with GOAWAY ENHANCE_YOUR_CALM (True)."""
        now = self.loop.time()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._flood.clear()
        self._flood[reason] += 1
        if self._flood[reason] > self._limits.h2_max_resets_per_second:
            self._fail(reason, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            return True
        return False

    def _dispatch(self, sid: int, raw: list[tuple[bytes, bytes]], body: bytes) -> None:
        if self._closing:
            self._h2.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        req = request_from_fields(raw, body, self._client, self._scheme, "2")
        self._stats.requests += 1
        self._handler(req, self._open_stream(sid))

    def _open_stream(self, sid: int) -> H2Stream:
        stream = self._streams[sid] = H2Stream(self, sid)
        return stream

    # sending -----------------------------------------------------------------------------
    def send_headers(
        self, stream: H2Stream, headers: list[tuple[bytes, bytes]], *, end_stream: bool
    ) -> None:
        try:
            self._h2.send_headers(stream.stream_id, headers, end_stream=end_stream)
        except h2.exceptions.ProtocolError:
            stream.reset = True
        self._write()

    def push(self, stream: H2Stream) -> None:
        """Send what the windows allow of ``stream``'s queued body."""
        if self._transport is None or self._paused:
            return
        self._send_stream(stream)
        self._write()

    def flush(self) -> None:
        """Send what the windows allow of every stream's queued body."""
        if self._transport is None or self._paused:
            return
        for stream in list(self._streams.values()):
            self._send_stream(stream)
        self._write()

    def _send_stream(self, stream: H2Stream) -> None:
        h2conn, sid = self._h2, stream.stream_id
        try:
            while stream.pending:
                window = min(h2conn.local_flow_control_window(sid), h2conn.max_outbound_frame_size)
                if window <= 0:
                    return
                chunk = stream.pending[0]
                piece = chunk[:window]
                last = stream.ending and len(stream.pending) == 1 and len(piece) == len(chunk)
                h2conn.send_data(sid, piece.tobytes(), end_stream=last)
                if last:
                    stream.pending.popleft()
                    stream.queued -= len(piece)
                    stream._done()
                    return
                stream.progress_at = self.loop.time()
                stream.queued -= len(piece)
                if len(piece) == len(chunk):
                    stream.pending.popleft()
                else:
                    stream.pending[0] = chunk[len(piece):]
                stream.wake()
            if stream.ending:
                h2conn.end_stream(sid)
                stream._done()
        except h2.exceptions.ProtocolError:
            stream.reset = True
            stream.pending.clear()
            stream._done()

    def reset_stream(self, stream: H2Stream, code: h2.errors.ErrorCodes) -> None:
        stream.pending.clear()
        stream.queued = 0
        if not stream.reset:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream.stream_id, code)
        stream.reset = True
        stream._done()
        self._write()

    def stream_done(self, stream: H2Stream) -> None:
        self._streams.pop(stream.stream_id, None)
        stream.wake()
        if self._closing and not self._streams and not self._incoming:
            self._shut()
        self._idle()

    def _write(self) -> None:
        if self._batching:
            return  # data_received writes once it has handled every frame
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self.gone:
            self._transport.write(data)

    # ending ------------------------------------------------------------------------------
    def _fail(self, reason: str, code: h2.errors.ErrorCodes) -> None:
        self._stats.on_refuse(reason)
        if self._transport is None or self.gone:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection(code)
        self._shut()

    def _shut(self) -> None:
        """Write what h2 has queued (the last frames, GOAWAY) and close the transport."""
        if self._transport is None or self.gone:
            return
        self._batching = False  # the last frames go out now, whatever is being handled
        self._write()
        self.gone = True
        self._transport.close()

    def close(self) -> None:
        """GOAWAY: no new streams; those in flight finish (at most
        ``CLOSE_GRACE_SECONDS``), then the connection closes (RFC 9113 6.8)."""
        if self._transport is None or self._closing or self.gone:
            return
        self._closing = True
        if not self._streams and not self._incoming:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection(h2.errors.ErrorCodes.NO_ERROR)
            self._shut()
            return
        # h2 sends nothing more once it has sent GOAWAY, so the frame is written here
        # (hyperframe's codec) and h2 goes on serving the streams in flight; streams
        # the client opens after it are refused in _dispatch.
        self._write()
        last = max([*self._streams, *self._incoming])
        goaway = hyperframe.frame.GoAwayFrame(0, last_stream_id=last, error_code=0)
        self._transport.write(goaway.serialize())
        self.loop.call_later(CLOSE_GRACE_SECONDS, self._shut)

    def _idle(self) -> None:
        if not self._streams and not self._incoming:
            self.deadline = self.loop.time() + self._limits.idle_timeout

    def expire(self, now: float) -> None:
        """Called by the node's sweeper: close an idle connection (GOAWAY), reset streams
        whose client has not taken data for ``limits.body_timeout`` seconds."""
        if self._transport is None:
            return
        if self.deadline is not None and now >= self.deadline and not self._streams:
            self.deadline = None
            self._stats.on_refuse("idle-timeout")
            self.close()
            return
        for stream in list(self._streams.values()):
            if stream.pending and now - stream.progress_at > self._limits.body_timeout:
                self._stats.on_refuse("send-timeout")
                self.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
