"""DNS over UDP and TCP on asyncio. Only I/O lives here: every message is handed to a
synchronous ``handler(data, client_ip, tcp) -> bytes | None`` (the app wraps the pure
resolver) and whatever it returns is sent back; None means drop.

* UDP: one datagram in, at most one out, handled inside ``datagram_received`` (no task
  per query).
* TCP (RFC 1035 4.2.2, RFC 7766): each message has a 2-octet length prefix; a connection
  carries any number of queries, answered in order; it is closed after
  ``idle_timeout`` seconds without a complete query, after a message the handler drops,
  or when ``max_connections`` are already open.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

from cdn_core.service import bind_error
from router import udpbatch
from router.udpbatch import RawHandler

log = logging.getLogger("cdn.router.dns")

Handler = Callable[[bytes, str, bool], bytes | None]


class UdpProtocol(asyncio.DatagramProtocol):
    """Answers each datagram synchronously through ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        wire = self._handler(data, str(addr[0]), False)
        if wire is not None and self._transport is not None:
            self._transport.sendto(wire, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors about earlier replies (port unreachable): nothing to do per query.
        pass


class DnsServer:
    """UDP and TCP listeners on one address and port (port 0 picks a free one usable on
    both)."""

    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        udp_handler: RawHandler | None = None,
        max_query: int = 4096,
        max_reply: int = 65535,
        idle_timeout: float = 10.0,
        max_connections: int = 256,
    ) -> None:
        self._handler = handler
        # With a raw handler and recvmmsg here, UDP is served in batches (udpbatch).
        self._udp_handler = udp_handler if udpbatch.available() else None
        self._max_query = max_query
        self._max_reply = max_reply
        self._batched: udpbatch.BatchedUdp | None = None
        self.host = host
        self.port = port
        self._idle = idle_timeout
        self._max_conn = max_connections
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind both listeners.

        Raises:
            StartupError: the address cannot be bound over UDP or TCP.
        """
        loop = asyncio.get_running_loop()
        attempts = 10 if self.port == 0 else 1
        for attempt in range(attempts):
            sock = _bind_udp(self.host, self.port)
            port = sock.getsockname()[1]
            try:
                self._tcp = await asyncio.start_server(
                    self._serve, self.host, port, reuse_address=True, backlog=512
                )
            except OSError as exc:
                sock.close()
                # With port 0 the UDP port may be taken over TCP: try another one.
                if exc.errno == errno.EADDRINUSE and attempt + 1 < attempts:
                    continue
                raise bind_error(self.host, port, exc) from exc
            if self._udp_handler is not None:
                self._batched = udpbatch.BatchedUdp(
                    sock, self._udp_handler, max_query=self._max_query, max_reply=self._max_reply
                )
                self._batched.start()
            else:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: UdpProtocol(self._handler), sock=sock
                )
            self.port = port
            return

    async def stop(self) -> None:
        """Close the listeners and every open TCP connection."""
        if self._batched is not None:
            self._batched.close()
            self._batched = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        conns = list(self._conns)
        for task in conns:
            task.cancel()
        for task in conns:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._conns) >= self._max_conn:
            writer.close()
            return
        self._conns.add(task)
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else ""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._idle):
                        size = int.from_bytes(await reader.readexactly(2), "big")
                        data = await reader.readexactly(size) if size else b""
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    break
                wire = self._handler(data, client, True) if data else None
                if wire is None:
                    break
                writer.write(len(wire).to_bytes(2, "big") + wire)
                try:
                    await writer.drain()
                except ConnectionError:
                    break
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


def _bind_udp(host: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket. Bound here rather than by the event loop so the
    error keeps its errno (uvloop reports only "could not bind").

    Raises:
        StartupError: naming the address.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
        family, type_, proto, _, addr = infos[0]
        sock = socket.socket(family, type_, proto)
    except OSError as exc:
        raise bind_error(host, port, exc) from exc
    try:
        sock.setblocking(False)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise bind_error(host, port, exc) from exc
    return sock
