"""Load for chaos scenarios: an aiohttp client with bounded concurrency (at most
:data:`MAX_CONCURRENCY`), a bounded number of requests *and* a bounded duration, paced to
a request rate so that the stack under test keeps its share of the CPU.

Two client models:

- **direct**: requests go to the edge addresses in turn, with the site's ``Host`` header
  (what a load balancer or a pinned client does); no retries.
- **resolving** (:class:`Resolver`): the client asks the router for the site's address,
  keeps the answer for its TTL, and on a connection error re-resolves and retries once,
  preferring an address other than the one that failed (what real clients do).

A response counts as a client-visible error when the connection fails, it times out, or
its status is not one the caller expects. Stale responses are counted from the
``Cache-Status`` entries (RFC 9211) whose ``detail`` says ``stale...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype

MAX_CONCURRENCY = 20
_SAMPLES = 5


def cache_status_entries(value: str) -> list[tuple[str, list[str]]]:
    """``Cache-Status`` members as ``(cache name, [params])``, first (nearest the origin)
    first."""
    out = []
    for member in value.split(","):
        parts = [p.strip() for p in member.split(";")]
        if parts and parts[0]:
            out.append((parts[0], parts[1:]))
    return out


def is_stale(cache_status: str) -> bool:
    """True when some tier served this response stale: a ``detail=stale...`` parameter
    (``stale``, ``stale-if-error``, ``stale-while-revalidate``), or ``hit`` with
    ``fwd=stale`` (served from a stale copy without a successful forward, e.g.
    ``detail=upstream-down``), or ``detail=failover`` (a mid tier in forced failover
    answers that only for stale copies: fresh ones are plain hits)."""
    for _, params in cache_status_entries(cache_status):
        if any(p.startswith("detail=stale") or p == "detail=failover" for p in params):
            return True
        if "hit" in params and "fwd=stale" in params:
            return True
    return False


def tier_names(cache_status: str) -> list[str]:
    return [name for name, _ in cache_status_entries(cache_status)]


@dataclass
class LoadStats:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    stale: int = 0
    retries: int = 0
    dns_failures: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < _SAMPLES:
            self.error_samples.append(what)

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "requests": self.sent,
            "errors": self.errors,
            "stale": self.stale,
            "retries": self.retries,
            "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
            "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "statuses": dict(self.statuses),
            "error_samples": self.error_samples,
            "seconds": round(self.seconds, 2),
        }


class Resolver:
    """A stub resolver for one name: caches the router's answer for its TTL, and keeps
    using the last answer while the router does not answer (RFC 8767 style)."""

    def __init__(self, server: tuple[str, int], name: str, timeout: float = 1.0) -> None:
        self.server = server
        self.name = name
        self.timeout = timeout
        self.queries = 0
        self.failures = 0
        self._answer: list[str] = []
        self._expires = 0.0

    async def query(self) -> tuple[list[str], int]:
        """One fresh query over UDP: ``(addresses, ttl)``.

        Raises:
            dns.exception.DNSException, OSError: no usable answer.
        """
        self.queries += 1
        q = dns.message.make_query(self.name, "A")
        r = await dns.asyncquery.udp(q, self.server[0], port=self.server[1], timeout=self.timeout)
        addrs, ttl = [], 0
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.A:
                addrs += [rr.address for rr in rrset]
                ttl = rrset.ttl
        return addrs, ttl

    async def resolve(self, *, fresh: bool = False) -> list[str]:
        if not fresh and self._answer and time.monotonic() < self._expires:
            return self._answer
        try:
            addrs, ttl = await self.query()
        except (dns.exception.DNSException, OSError):
            self.failures += 1
            if self._answer:
                return self._answer
            raise
        if addrs:
            self._answer = addrs
            self._expires = time.monotonic() + ttl
        return addrs or self._answer


_CONN_ERRORS = (aiohttp.ClientConnectionError, OSError)


async def run_load(
    *,
    paths: list[str],
    host: str,
    port: int,
    edges: list[str] | None = None,
    resolver: Resolver | None = None,
    concurrency: int = 10,
    max_requests: int = 1000,
    max_seconds: float = 5.0,
    rate: float = 150.0,
    timeout: float = 8.0,
    expect: tuple[int, ...] = (200,),
    stop: asyncio.Event | None = None,
) -> LoadStats:
    """Send at most ``max_requests`` GETs for ``paths`` (in turn) within ``max_seconds``
    (requests in flight then get their own ``timeout``), ``concurrency`` at a time, paced
    to ``rate`` per second; ends early when ``stop`` is set. Exactly one of ``edges``
    (direct model) or ``resolver`` (resolving model) is given."""
    if (edges is None) == (resolver is None):
        raise ValueError("give edges or a resolver")
    if not paths or (edges is not None and not edges):
        raise ValueError("nothing to request")
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
    stats = LoadStats()
    headers = {"Host": f"{host}:{port}"}
    started = time.monotonic()
    deadline = started + max_seconds
    counter = iter(range(max_requests))

    async def one(session: aiohttp.ClientSession, addr: str, path: str) -> None:
        t0 = time.monotonic()
        async with session.get(f"http://{addr}:{port}{path}", headers=headers) as resp:
            await resp.read()
            stats.latencies.append(time.monotonic() - t0)
            stats.statuses[str(resp.status)] += 1
            if is_stale(", ".join(resp.headers.getall("Cache-Status", []))):
                stats.stale += 1
            if resp.status in expect:
                stats.ok += 1
            else:
                stats.error(f"{addr}{path}: HTTP {resp.status}")

    async def worker(session: aiohttp.ClientSession) -> None:
        for n in counter:
            now = time.monotonic()
            if now >= deadline or (stop is not None and stop.is_set()):
                return
            due = started + n / rate
            if due > now:
                await asyncio.sleep(min(due - now, deadline - now))
                if time.monotonic() >= deadline:
                    return
            path = paths[n % len(paths)]
            stats.sent += 1
            if edges is not None:
                addr = edges[n % len(edges)]
                try:
                    await one(session, addr, path)
                except (*_CONN_ERRORS, TimeoutError) as exc:
                    stats.error(f"{addr}{path}: {type(exc).__name__}")
                continue
            assert resolver is not None
            try:
                addr = (await resolver.resolve())[0]
            except (dns.exception.DNSException, OSError, IndexError) as exc:
                stats.dns_failures += 1
                stats.error(f"resolve: {type(exc).__name__}")
                continue
            try:
                await one(session, addr, path)
            except (*_CONN_ERRORS, TimeoutError) as exc:
                # What a real client does: resolve again, retry once elsewhere if it can.
                stats.retries += 1
                try:
                    fresh = await resolver.resolve(fresh=True)
                    other = [a for a in fresh if a != addr] or fresh
                    await one(session, other[0], path)
                except (*_CONN_ERRORS, TimeoutError, dns.exception.DNSException, IndexError):
                    stats.error(f"{addr}{path}: {type(exc).__name__}, retry failed")

    connector = aiohttp.TCPConnector(limit=concurrency, use_dns_cache=False)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        auto_decompress=False,
    ) as session:
        tasks = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        try:
            # Bounded in time whatever happens: requests in flight at the deadline get
            # their own timeout, then everything is cancelled.
            await asyncio.wait_for(asyncio.gather(*tasks), max_seconds + timeout + 2)
        except TimeoutError:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
    stats.seconds = time.monotonic() - started
    return stats


async def get_once(
    addr: str, port: int, host: str, path: str, *, timeout: float = 8.0
) -> tuple[int, dict[str, str], bytes]:
    """One GET: ``(status, headers with lower-case names, body)``; status 0 on a
    connection error or timeout."""
    try:
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout), auto_decompress=False
            ) as session,
            session.get(f"http://{addr}:{port}{path}", headers={"Host": f"{host}:{port}"}) as resp,
        ):
            body = await resp.read()
            out: dict[str, str] = {}
            for k, v in resp.headers.items():
                out[k.lower()] = f"{out[k.lower()]}, {v}" if k.lower() in out else v
            return resp.status, out, body
    except (*_CONN_ERRORS, TimeoutError):
        return 0, {}, b""
