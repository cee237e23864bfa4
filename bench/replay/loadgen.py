"""Sends a :class:`~bench.replay.workload.Workload` to a stack's edges over HTTP/1.1
(aiohttp, keep-alive), closed loop at a fixed concurrency or open loop at the send times
the workload gives, and fills a :class:`~bench.replay.tally.Tally`."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import aiohttp

from bench.replay.tally import Tally
from bench.replay.workload import Workload, object_path

REQUEST_TIMEOUT = 60.0  # seconds for one whole response
READ_CHUNK = 256 * 1024


class EdgeMap(Protocol):
    queries: int

    async def edge_for(self, client: int) -> str: ...


class Replayer:
    """One replay: ``site`` is the Host sent, ``port`` the edges' HTTP port, ``prefix``
    the origin's synthetic-object path prefix."""

    def __init__(self, work: Workload, edges: EdgeMap, *, site: str, port: int,
                 prefix: str = "/obj/") -> None:
        self.work = work
        self.edges = edges
        self.site = site
        self.port = port
        self.prefix = prefix
        self.tally = Tally()

    async def _one(self, session: aiohttp.ClientSession, i: int, started: float) -> None:
        w = self.work
        size = w.sizes[i]
        edge = "?"
        try:
            edge = await self.edges.edge_for(w.clients[i])
            url = f"http://{edge}:{self.port}{object_path(self.prefix, w.ids[i], size)}"
            async with session.get(url, headers={"Host": self.site}) as resp:
                received = 0
                async for chunk in resp.content.iter_chunked(READ_CHUNK):
                    received += len(chunk)
                cache_status = ", ".join(resp.headers.getall("Cache-Status", []))
                self.tally.record(edge=edge, size=size, status=resp.status,
                                  received=received, cache_status=cache_status,
                                  latency=time.perf_counter() - started)
        except (aiohttp.ClientError, OSError, TimeoutError, LookupError) as exc:
            self.tally.failed(edge=edge, size=size, kind=type(exc).__name__)

    def _session(self, connections: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=0,
                                           use_dns_cache=False),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            auto_decompress=False, skip_auto_headers=("Accept-Encoding", "User-Agent"))

    async def closed(self, concurrency: int) -> None:
        """``concurrency`` clients in flight at once, taking requests in trace order."""
        next_i = iter(range(self.work.requests))

        async def worker(session: aiohttp.ClientSession) -> None:
            for i in next_i:
                await self._one(session, i, time.perf_counter())

        async with self._session(concurrency) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))

    async def open(self, offsets: list[float], max_in_flight: int) -> None:
        """Each request sent at its offset (seconds from the start) whether or not
        earlier ones were answered, at most ``max_in_flight`` at once. Latency counts from
        the planned send time, so waiting for a free slot shows in it (no coordinated
        omission); a send more than 10 ms behind plan is counted as late."""
        slots = asyncio.Semaphore(max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()

        async def send(session: aiohttp.ClientSession, i: int, planned: float) -> None:
            try:
                await self._one(session, i, planned)
            finally:
                slots.release()

        async with self._session(max_in_flight) as session:
            t0 = time.perf_counter()
            for i, offset in enumerate(offsets):
                delay = t0 + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                if time.perf_counter() - (t0 + offset) > 0.010:
                    self.tally.late += 1
                task = loop.create_task(send(session, i, t0 + offset))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
