"""Client round-trip times measured by an edge on real connections, reported to the DNS
router so it can send each client network to the edge nearest to it (issue 7).

The kernel measures the RTT of every TCP connection (``TCP_INFO``'s ``tcpi_rtt``, in
microseconds, already known from the handshake when a connection is accepted). The edge
averages it per client prefix (/24 for IPv4, /56 for IPv6) and posts the averages to the
router's ``POST /v1/rtt`` every ``interval`` seconds. Reporting is best effort: a router
that is down costs a log line, never a client request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct

import aiohttp

from cdn_core.node.settings.observe import RttReportSettings

log = logging.getLogger("cdn.node.rtt")

# struct tcp_info (linux/tcp.h): eight u8 fields, then u32 fields; tcpi_rtt is the 16th
# u32, at byte offset 68.
_TCP_INFO_LEN = 104
_RTT_OFFSET = 68
MAX_PREFIXES = 4096  # per report; the router caps samples per post too


def connection_rtt_ms(sock: socket.socket) -> float | None:
    """The kernel's smoothed RTT of a TCP connection, milliseconds; None where
    ``TCP_INFO`` is not available."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):
        return None
    if len(info) < _RTT_OFFSET + 4:
        return None
    (rtt_us,) = struct.unpack_from("I", info, _RTT_OFFSET)
    return int(rtt_us) / 1000.0


class RttReporter:
    """Collects per-prefix RTT samples and posts them (see module docstring)."""

    def __init__(self, settings: RttReportSettings, edge: str) -> None:
        self.settings = settings
        self.edge = edge
        self._sums: dict[str, list[float]] = {}
        self._task: asyncio.Task[None] | None = None
        self.reported = 0

    def prefix(self, address: str) -> str | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        bits = self.settings.ipv4_prefix if ip.version == 4 else self.settings.ipv6_prefix
        return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))

    def observe(self, transport: asyncio.BaseTransport) -> None:
        """Record the RTT of a newly accepted connection."""
        sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername")
        if sock is None or not peer:
            return
        rtt = connection_rtt_ms(sock)
        prefix = self.prefix(peer[0])
        if rtt is None or prefix is None:
            return
        acc = self._sums.get(prefix)
        if acc is None:
            if len(self._sums) >= MAX_PREFIXES:
                return
            acc = self._sums[prefix] = [0.0, 0.0]
        acc[0] += rtt
        acc[1] += 1

    def take(self) -> list[dict[str, object]]:
        """The averages since the last call, as the router's ``samples`` list."""
        sums, self._sums = self._sums, {}
        return [{"prefix": p, "rtt_ms": round(s / n, 3)} for p, (s, n) in sums.items() if n]

    def start(self) -> None:
        if self.settings.url:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        url = str(self.settings.url).rstrip("/") + "/v1/rtt"
        timeout = aiohttp.ClientTimeout(total=2)
        failing = False
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await asyncio.sleep(self.settings.interval)
                samples = self.take()
                if not samples:
                    continue
                try:
                    async with session.post(url, json={"edge": self.edge,
                                                       "samples": samples}) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    ok = False
                    if not failing:
                        log.warning("cannot report client RTTs to %s: %s", url, exc)
                if ok:
                    self.reported += len(samples)
                failing = not ok
