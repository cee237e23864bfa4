"""A small fault-injecting TCP proxy placed between two tiers (asyncio).

Modes (:class:`Fault`), switched at run time and applied to new *and* established
connections (tiers keep pooled keep-alive connections, so a fault that only hit new
connections would be bypassed):

- ``pass``: forward bytes both ways.
- ``latency``: hold each chunk from the client ``latency`` seconds before forwarding it,
  so every request answers that much later.
- ``reset``: close with a TCP RST (``SO_LINGER`` 0) on connect, or once ``reset_after``
  bytes went back to the client; switching to it resets every open connection.
- ``blackhole``: accept, read and discard; never answer, never close.
- ``http500``: answer every request head with a canned ``500 Internal Server Error``
  (keep-alive) without reaching the upstream.

An upstream that refuses the connection makes the proxy reset the client's, so a dead
process behind the proxy looks like a dead process, not like a hang.

**Where it runs.** :class:`FaultProxyThread` hosts every proxy of a chaos run on one event
loop in a daemon thread of the runner process, not in a process of its own: a mode switch
is a function call (no control port, no protocol, nothing to authenticate), the proxies
can never outlive the runner that must switch them back, and their loop is isolated from
the load generator's, so a busy client cannot stretch an injected latency or delay
forwarding for the other tiers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

Mode = Literal["pass", "latency", "reset", "blackhole", "http500"]
MODES: tuple[str, ...] = ("pass", "latency", "reset", "blackhole", "http500")
_CHUNK = 65536
_CANNED_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 22\r\n"
    b"Cache-Control: no-store\r\n"
    b"\r\n"
    b"injected by faultproxy"
)
T = TypeVar("T")


@dataclass(frozen=True)
class Fault:
    mode: Mode = "pass"
    latency: float = 0.0
    """Seconds added per client chunk (``latency``)."""
    reset_after: int | None = None
    """``reset``: bytes sent back to the client before the RST (None: on connect)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"fault mode must be one of {', '.join(MODES)}")
        if self.latency < 0 or (self.reset_after is not None and self.reset_after < 0):
            raise ValueError("latency and reset_after must not be negative")


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    canned_500: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with RST: SO_LINGER on, zero timeout, then abort."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """One listening address forwarding to one upstream, with a switchable :class:`Fault`.
    Runs on the loop of its :class:`FaultProxyThread` (or any loop, in tests)."""

    def __init__(self, name: str, listen: tuple[str, int], upstream: tuple[str, int]) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.fault = Fault()
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.listen[0], self.listen[1], reuse_address=True
        )
        # port 0 picks a free port: report the bound one
        self.listen = (self.listen[0], self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def set_fault(self, fault: Fault) -> None:
        self.fault = fault
        self.stats.by_mode[fault.mode] = self.stats.by_mode.get(fault.mode, 0) + 1
        if fault.mode == "reset":
            for w in list(self._writers):
                _reset(w)
                self.stats.resets += 1

    # connections -------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self._writers.add(writer)
        self.stats.connections += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            fault = self.fault
            if fault.mode == "reset" and not fault.reset_after:
                self.stats.resets += 1
                _reset(writer)
                return
            if fault.mode == "blackhole":
                while await reader.read(_CHUNK):
                    if self.fault.mode != "blackhole":
                        break  # data already swallowed: this connection stays useless
                return
            up_reader: asyncio.StreamReader | None = None
            if fault.mode != "http500":
                try:
                    up_reader, upstream = await asyncio.open_connection(*self.upstream)
                except OSError:
                    self.stats.resets += 1
                    _reset(writer)
                    return
                self._writers.add(upstream)
            await self._pump(reader, writer, up_reader, upstream)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            if self.fault.mode == "reset":
                writer.transport.abort()
            else:
                writer.close()
            if upstream is not None:
                self._writers.discard(upstream)
                upstream.close()
            self._conns.discard(task)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader | None,
        upstream: asyncio.StreamWriter | None,
    ) -> None:
        down: asyncio.Task[None] | None = None
        if up_reader is not None:
            down = asyncio.get_running_loop().create_task(self._downstream(up_reader, writer))
        try:
            pending = b""
            while True:
                chunk = await reader.read(_CHUNK)
                if not chunk:
                    return
                fault = self.fault
                if fault.mode == "blackhole":
                    continue
                if fault.mode == "reset":
                    self.stats.resets += 1
                    _reset(writer)
                    return
                if fault.mode == "http500" or upstream is None:
                    # Without an upstream (the connection opened in http500 mode) every
                    # request head gets the canned answer, whatever the mode is now.
                    pending += chunk
                    heads = pending.count(b"\r\n\r\n")
                    pending = pending[pending.rfind(b"\r\n\r\n") + 4 :] if heads else pending
                    for _ in range(heads):
                        writer.write(_CANNED_500)
                        self.stats.canned_500 += 1
                    await writer.drain()
                    continue
                if fault.mode == "latency" and fault.latency:
                    await asyncio.sleep(fault.latency)
                upstream.write(chunk)
                self.stats.bytes_up += len(chunk)
                await upstream.drain()
        finally:
            if down is not None:
                down.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await down

    async def _downstream(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sent = 0
        while True:
            chunk = await up_reader.read(_CHUNK)
            if not chunk:
                writer.close()
                return
            fault = self.fault
            if fault.mode == "reset" and fault.reset_after is not None:
                room = fault.reset_after - sent
                if room <= 0 or len(chunk) > room:
                    writer.write(chunk[: max(room, 0)])
                    self.stats.resets += 1
                    _reset(writer)
                    return
            if fault.mode in ("blackhole", "http500"):
                continue  # the upstream's late answer is never delivered
            writer.write(chunk)
            sent += len(chunk)
            self.stats.bytes_down += len(chunk)
            await writer.drain()

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "fault": asdict(self.fault), **asdict(self.stats)}


class FaultProxyThread:
    """Hosts :class:`FaultProxy` objects on an event loop in a daemon thread (see the
    module docstring); every method is called from the runner's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self.proxies: dict[str, FaultProxy] = {}

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, proxies: list[FaultProxy]) -> None:
        """Start the thread and bind every proxy.

        Raises:
            OSError: an address cannot be bound.
        """
        self._thread.start()
        for p in proxies:
            self._call(p.start())
            self.proxies[p.name] = p

    def set_fault(self, name: str, fault: Fault) -> None:
        proxy = self.proxies[name]

        async def switch() -> None:
            proxy.set_fault(fault)

        self._call(switch())

    def snapshot(self) -> list[dict[str, Any]]:
        async def snap() -> list[dict[str, Any]]:
            return [p.snapshot() for p in self.proxies.values()]

        return self._call(snap())

    def stop(self) -> None:
        if not self._thread.is_alive():
            self.loop.close()
            return
        for p in self.proxies.values():
            with contextlib.suppress(Exception):
                self._call(p.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
