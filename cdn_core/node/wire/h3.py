"""HTTP/3 over QUIC for edges (RFC 9114, RFC 9000), on ``aioquic``: QUIC, TLS 1.3 and
QPACK are aioquic's; each request stream is a
:class:`~cdn_core.node.exchange.channel.ResponseChannel`, so it goes through the request
path an HTTP/1.1 or HTTP/2 request does (:func:`~cdn_core.node.wire.fields.request_from_fields`
builds the request, :func:`~cdn_core.node.wire.fields.response_fields` the response fields).

The listener (:func:`serve_h3`) shares the TLS port's number on UDP, validates client
addresses with Retry (RFC 9000 8.1) and keeps aioquic's amplification limit; a packet
aioquic cannot parse is dropped without touching other connections. Connections count
against ``limits.max_connections`` like TCP ones (the QUIC connection is closed when over);
the QUIC idle timeout is ``limits.idle_timeout``. Certificates are chosen by SNI
(:mod:`~cdn_core.node.wire.quic_sni`). Request bodies are read whole (413 over
``limits.max_body_bytes``). Response bodies are handed to aioquic as it sends them: at
most ``SEND_BUFFER_BYTES`` of a stream's data sit in aioquic's stream buffer (sent but
unacknowledged, or waiting for flow control), the rest stays in the stored bytes, so a
16 MiB object is never copied whole per stream. :meth:`H3Stream.drain` waits while a
streamed body has data not yet handed over, and a stream whose client takes nothing for
``limits.body_timeout`` seconds is reset (``send-timeout``), as on HTTP/1.1 and HTTP/2.
How much aioquic holds is read from its stream sender's buffer (``QuicConnection._streams``,
``QuicStreamSender._buffer``: aioquic has no public accessor; it is pinned in
constraints.txt).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, QuicEvent, StreamReset

from cdn_core.heads import plain_response
from cdn_core.node.exchange.channel import Handler
from cdn_core.node.settings.limits import LimitSettings
from cdn_core.node.wire.fields import interim_fields, request_from_fields, response_fields
from cdn_core.node.wire.h2_stream import SEND_BUFFER_BYTES
from cdn_core.node.wire.quic_sni import QuicCertificates
from cdn_core.node.wire.stats import ServerStats


class H3Stream:
    """One request stream's :class:`~cdn_core.node.exchange.channel.ResponseChannel`."""

    __slots__ = ("proto", "stream_id", "finished", "reset", "started", "pending", "ending",
                 "progress_at", "_writable")

    def __init__(self, proto: H3ServerProtocol, stream_id: int) -> None:
        self.proto = proto
        self.stream_id = stream_id
        self.finished = False  # the FIN is handed to aioquic (or the stream was dropped)
        self.reset = False
        self.started = False
        self.pending: collections.deque[memoryview] = collections.deque()  # not handed over
        self.ending = False  # the response is complete: FIN once pending is handed over
        self.progress_at = asyncio.get_running_loop().time()
        self._writable: asyncio.Event | None = None

    @property
    def closed(self) -> bool:
        return self.reset or self.proto.gone

    @property
    def _taking(self) -> bool:
        """The request path may still write to this stream."""
        return not (self.closed or self.finished or self.ending)

    def interim(self, status: int, fields: list[tuple[str, str]]) -> None:
        if not self._taking or self.started:
            return
        self.proto.send_headers(self, interim_fields(status, fields))

    def respond(self, head: bytes, lines: bytes, body: bytes, keep_alive: bool) -> None:
        if not self._taking:
            return
        self.started = True
        if not body:
            self.proto.send_headers(self, response_fields(head, lines), end=True)
            self._done()
            return
        self.proto.send_headers(self, response_fields(head, lines))
        self.pending.append(memoryview(body))
        self.ending = True
        self.proto.feed(self)

    def start(self, head: bytes, lines: bytes, *, length: int | None, keep_alive: bool) -> None:
        if not self._taking:
            return
        self.started = True
        self.proto.send_headers(self, response_fields(head, lines))

    def send(self, chunk: bytes) -> None:
        if self._taking and chunk:
            self.pending.append(memoryview(chunk))
            self.proto.feed(self)

    async def drain(self) -> None:
        while self.pending and not self.closed:
            if self._writable is None:
                self._writable = asyncio.Event()
            self._writable.clear()
            await self._writable.wait()

    def end(self, keep_alive: bool) -> None:
        if self._taking:
            self.ending = True
            self.proto.feed(self)

    def abort(self) -> None:
        """A body cut short upstream: the stream is reset (RFC 9114 4.1.2)."""
        self.close()

    def close(self) -> None:
        if not self.finished:
            self.proto.reset(self)
            self._done()

    def wake(self) -> None:
        if self._writable is not None and (not self.pending or self.closed):
            self._writable.set()

    def _done(self) -> None:
        self.finished = True
        self.pending.clear()
        self.proto.stream_done(self)
        self.wake()


class H3ServerProtocol(QuicConnectionProtocol):
    """One QUIC connection speaking HTTP/3 (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        handler: Handler,
        limits: LimitSettings,
        stats: ServerStats,
        certificates: QuicCertificates,
        track: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        certificates.install(self._quic)
        self._handler = handler
        self._limits = limits
        self._stats = stats
        self._h3: H3Connection | None = None
        self._incoming: dict[int, tuple[list[tuple[bytes, bytes]], list[bytes], int]] = {}
        self.streams: dict[int, H3Stream] = {}
        self._feeding: set[H3Stream] = set()  # streams with body bytes not handed over
        self._client = ""
        self._counted = False
        self.gone = False
        self.deadline: float | None = None
        # True while a datagram's events are handled: aioquic transmits once after them,
        # so the responses answered from the cache meanwhile share packets.
        self._batching = False
        if track is not None:
            track(self)

    @property
    def busy(self) -> bool:
        return bool(self.streams)

    def expire(self, now: float) -> None:
        """Called by the node's sweeper: reset streams whose client has taken no data for
        ``limits.body_timeout`` seconds (idle connections end by the QUIC idle timeout)."""
        for stream in list(self._feeding):
            if now - stream.progress_at > self._limits.body_timeout:
                self._stats.on_refuse("send-timeout")
                stream.close()

    def close(self) -> None:  # type: ignore[override]
        """Close the QUIC connection (H3_NO_ERROR): the client sees CONNECTION_CLOSE."""
        if not self.gone:
            self._quic.close(error_code=ErrorCode.H3_NO_ERROR)
            self.transmit()

    # QUIC events --------------------------------------------------------------------------
    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            if event.alpn_protocol in H3_ALPN:
                self._h3 = H3Connection(self._quic)
                self._admit()
        elif isinstance(event, ConnectionTerminated):
            self._lost()
        elif isinstance(event, StreamReset):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.reset = True
                stream._done()
            self._incoming.pop(event.stream_id, None)
        if self._h3 is not None and not self.gone:
            for h3_event in self._h3.handle_event(event):
                self._on_h3(h3_event)

    def datagram_received(self, data: bytes, addr: Any) -> None:  # type: ignore[override]
        self._batching = True
        try:
            super().datagram_received(data, addr)  # handles the events, then transmits
        finally:
            self._batching = False
        if self._feeding and not self.gone:
            # The datagram may have acknowledged data: hand over more where there is room,
            # then send it all at once.
            self._batching = True
            try:
                for stream in list(self._feeding):
                    self.feed(stream)
            finally:
                self._batching = False
            self.transmit()

    def _transmit(self) -> None:
        if not self._batching:
            self.transmit()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()
        super().connection_lost(exc)

    def _admit(self) -> None:
        # aioquic keeps the peer address on its network paths only (no public accessor).
        paths = self._quic._network_paths
        addr = paths[0].addr if paths else ("",)
        self._client = str(addr[0])
        self._counted = True
        reason = self._stats.admit(self._client, self._limits)
        if reason is not None:
            self._stats.on_refuse(reason)
            self._quic.close(error_code=ErrorCode.H3_EXCESSIVE_LOAD, reason_phrase=reason)
            self.transmit()

    def _lost(self) -> None:
        if self.gone:
            return
        self.gone = True
        if self._counted:
            self._stats.release(self._client)
        for stream in list(self.streams.values()):
            stream._done()
        self._incoming.clear()

    def _on_h3(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            if event.stream_ended:
                self._dispatch(event.stream_id, event.headers, b"")
            else:
                self._incoming[event.stream_id] = (event.headers, [], 0)
        elif isinstance(event, DataReceived):
            entry = self._incoming.get(event.stream_id)
            if entry is None:
                return
            headers, body, size = entry
            size += len(event.data)
            if size > self._limits.max_body_bytes:
                del self._incoming[event.stream_id]
                self._stats.on_refuse("body-too-large")
                stream = self._open(event.stream_id)
                head, text = plain_response(413, "Content Too Large", "request body too large")
                stream.respond(head, b"", text, False)
                return
            body.append(event.data)
            self._incoming[event.stream_id] = (headers, body, size)
            if event.stream_ended:
                del self._incoming[event.stream_id]
                self._dispatch(event.stream_id, headers, b"".join(body))

    def _dispatch(self, sid: int, raw: list[tuple[bytes, bytes]], body: bytes) -> None:
        req = request_from_fields(raw, body, self._client, "https", "3")
        self._stats.requests += 1
        self._handler(req, self._open(sid))

    def _open(self, sid: int) -> H3Stream:
        stream = self.streams[sid] = H3Stream(self, sid)
        return stream

    # sending ------------------------------------------------------------------------------
    def send_headers(
        self, stream: H3Stream, headers: list[tuple[bytes, bytes]], *, end: bool = False
    ) -> None:
        h3 = self._h3
        if h3 is None or self.gone:
            return
        try:
            h3.send_headers(stream.stream_id, headers, end_stream=end)
        except Exception:  # noqa: BLE001 - a stream aioquic no longer accepts: drop it
            stream.reset = True
        self._transmit()

    def reset(self, stream: H3Stream) -> None:
        if not self.gone and not stream.reset:
            with contextlib.suppress(Exception):  # the stream is already closed
                self._quic.reset_stream(stream.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
            stream.reset = True
            self._transmit()

    def stream_done(self, stream: H3Stream) -> None:
        """``stream`` takes no more writes: it is neither tracked nor fed."""
        self.streams.pop(stream.stream_id, None)
        self._feeding.discard(stream)

    def held(self, stream_id: int) -> int:
        """Bytes aioquic holds for ``stream_id``: sent and not yet acknowledged, or not
        yet sent (flow control, congestion)."""
        quic_stream = self._quic._streams.get(stream_id)
        return len(quic_stream.sender._buffer) if quic_stream is not None else 0

    def feed(self, stream: H3Stream) -> None:
        """Hand ``stream``'s pending body to aioquic while it holds less than
        ``SEND_BUFFER_BYTES`` of it, then the FIN once all is handed over and the
        response is complete."""
        h3 = self._h3
        if h3 is None or stream.closed:
            self._feeding.discard(stream)
            return
        pending = stream.pending
        room = SEND_BUFFER_BYTES - self.held(stream.stream_id)
        try:
            while pending and room > 0:
                chunk = pending[0]
                piece = chunk[:room]
                if len(piece) == len(chunk):
                    pending.popleft()
                else:
                    pending[0] = chunk[len(piece):]
                fin = stream.ending and not pending
                h3.send_data(stream.stream_id, piece.tobytes(), end_stream=fin)
                room -= len(piece)
                stream.progress_at = self._loop.time()
                if fin:
                    break
            else:
                if not pending and stream.ending:  # the last piece went before end()
                    h3.send_data(stream.stream_id, b"", end_stream=True)
            if pending:
                self._feeding.add(stream)
            else:
                self._feeding.discard(stream)
                if stream.ending:
                    stream._done()
        except Exception:  # noqa: BLE001 - a stream aioquic no longer accepts: drop it
            stream.reset = True
            stream._done()
        stream.wake()
        self._transmit()


async def serve_h3(
    host: str,
    port: int,
    *,
    certificates: QuicCertificates,
    handler: Handler,
    limits: LimitSettings,
    stats: ServerStats,
    track: Any = None,
    max_datagram_size: int = 1350,
) -> QuicServer:
    """Listen for HTTP/3 on UDP ``host:port`` with ``certificates`` (chosen by SNI, as on
    the TCP TLS listener). ``track`` is called with each connection (the node keeps them
    for ``/status`` and shutdown). ``max_datagram_size`` (bytes, at least 1200 by RFC
    9000 14) bounds the UDP payloads sent: aioquic's per-packet cost dominates large
    responses, so fewer, larger packets cost less CPU.

    Raises:
        OSError: the UDP port cannot be bound.
    """
    config = QuicConfiguration(
        is_client=False, alpn_protocols=H3_ALPN, idle_timeout=limits.idle_timeout,
        max_datagram_size=max_datagram_size,
    )
    certificates.configure(config)

    def make(*args: Any, **kwargs: Any) -> H3ServerProtocol:
        return H3ServerProtocol(
            *args, handler=handler, limits=limits, stats=stats, track=track,
            certificates=certificates, **kwargs,
        )

    return await serve(host, port, configuration=config, create_protocol=make, retry=True)
