"""How replay clients find an edge: by asking the DNS router, each client with its own
EDNS Client Subnet (RFC 7871), and keeping the answer for its TTL as a stub resolver
behind a caching recursive would; or, for stacks without our router, a fixed spread.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable

import dnslib

from router.ecs import ECS_OPTION_CODE, encode_ecs

QUERY_TIMEOUT = 2.0  # seconds; then the query is sent again (UDP may drop)
QUERY_TRIES = 3


def client_subnet(client: int) -> str:
    """Client ``client``'s /24: 10.X.Y.0/24 (RFC 1918 space, never routed here)."""
    return f"10.{(client >> 8) & 0xFF}.{client & 0xFF}.0/24"


class _Answer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def query_a(server: tuple[str, int], name: str, subnet: str) -> tuple[str, int]:
    """One A query for ``name`` with ECS ``subnet``; ``(address, ttl seconds)``.

    Raises:
        LookupError: no A record in the answer (rcode and answer count say why).
        TimeoutError: no reply after :data:`QUERY_TRIES` tries.
    """
    q = dnslib.DNSRecord.question(name, "A")
    q.add_ar(dnslib.EDNS0(udp_len=1232,
                          opts=[dnslib.EDNSOption(ECS_OPTION_CODE, encode_ecs(subnet))]))
    packet = q.pack()
    loop = asyncio.get_running_loop()
    for _ in range(QUERY_TRIES):
        transport, proto = await loop.create_datagram_endpoint(_Answer, remote_addr=server)
        try:
            transport.sendto(packet)
            data = await asyncio.wait_for(proto.reply, QUERY_TIMEOUT)
        except TimeoutError:
            continue
        finally:
            transport.close()
        reply = dnslib.DNSRecord.parse(data)
        for rr in reply.rr:
            if rr.rtype == dnslib.QTYPE.A:
                return str(rr.rdata), rr.ttl
        raise LookupError(f"{name}: rcode {dnslib.RCODE.get(reply.header.rcode)}, "
                          f"{len(reply.rr)} answers")
    raise TimeoutError(f"no DNS answer from {server[0]}:{server[1]} after {QUERY_TRIES} tries")


class DnsEdges:
    """Client -> edge address through the router, cached per client for the answer's
    TTL (``clock`` in seconds, injectable). Counts queries made."""

    def __init__(self, server: tuple[str, int], name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self._name = name
        self._clock = clock
        self._cache: dict[int, tuple[str, float]] = {}
        self._pending: dict[int, asyncio.Task[str]] = {}
        self.queries = 0

    async def edge_for(self, client: int) -> str:
        cached = self._cache.get(client)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        task = self._pending.get(client)
        if task is None:
            task = asyncio.ensure_future(self._resolve(client))
            self._pending[client] = task
            task.add_done_callback(lambda _t: self._pending.pop(client, None))
        return await asyncio.shield(task)

    async def _resolve(self, client: int) -> str:
        self.queries += 1
        address, ttl = await query_a(self._server, self._name, client_subnet(client))
        self._cache[client] = (address, self._clock() + ttl)
        return address


class FixedEdges:
    """Client -> one of ``addresses`` by a stable hash of its subnet, for peer stacks
    that have no DNS router of ours in front."""

    queries = 0

    def __init__(self, addresses: list[str]) -> None:
        self._addresses = addresses

    async def edge_for(self, client: int) -> str:
        h = zlib.crc32(client_subnet(client).encode())
        return self._addresses[h % len(self._addresses)]
