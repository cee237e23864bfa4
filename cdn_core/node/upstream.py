"""Upstream selection and fetching: rendezvous hashing over the configured upstreams,
passive health (a failed connection marks an upstream down for ``retry_after`` seconds
and the request moves to the next node in rendezvous order), one bounded aiohttp
connection pool per upstream."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from cdn_core.clock import Clock
from cdn_core.errors import UpstreamError, UpstreamTimeout
from cdn_core.hashing import rendezvous_order
from cdn_core.node.config import UpstreamSettings


@dataclass
class UpstreamNode:
    url: str
    failures: int = 0
    down_until: float = 0.0
    fetches: int = 0


@dataclass
class UpstreamResponse:
    """A complete upstream response: ``headers`` as ``(name, value)`` strings in order."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    node: str


class UpstreamPool:
    def __init__(self, settings: UpstreamSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.nodes = [UpstreamNode(u.rstrip("/")) for u in settings.urls]
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        s = self.settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=s.pool_size),
            timeout=aiohttp.ClientTimeout(total=s.timeout, sock_connect=s.connect_timeout),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def order(self, key: str) -> list[UpstreamNode]:
        """Upstreams for ``key`` in rendezvous order, those currently down moved last."""
        ranked = rendezvous_order(key, self.nodes, lambda n: n.url)
        now = self.clock.monotonic()
        return [n for n in ranked if n.down_until <= now] + [
            n for n in ranked if n.down_until > now
        ]

    def _failed(self, node: UpstreamNode) -> None:
        node.failures += 1
        if node.failures >= self.settings.fail_threshold:
            node.down_until = self.clock.monotonic() + self.settings.retry_after

    async def fetch(
        self,
        key: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
    ) -> UpstreamResponse:
        """Send one request, trying upstreams in rendezvous order until one answers.

        Raises:
            UpstreamTimeout: the last upstream tried timed out.
            UpstreamError: no upstream is configured or none gave a complete response
                (refused, reset, truncated body, invalid response head).
        """
        if self._session is None or not self.nodes:
            raise UpstreamError("no upstream configured")
        last: Exception | None = None
        # Only idempotent requests move to another upstream after a failure.
        candidates = self.order(key)
        if method not in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
            candidates = candidates[:1]
        for node in candidates:
            try:
                async with self._session.request(
                    method,
                    node.url + target,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                ) as resp:
                    data = await resp.read()
                    node.failures = 0
                    node.down_until = 0.0
                    node.fetches += 1
                    return UpstreamResponse(
                        resp.status,
                        resp.reason or "",
                        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers],
                        data,
                        node.url,
                    )
            except TimeoutError as exc:
                self._failed(node)
                last = UpstreamTimeout(f"{node.url}: timed out")
                last.__cause__ = exc
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                self._failed(node)
                last = UpstreamError(f"{node.url}: {type(exc).__name__}: {exc}")
                last.__cause__ = exc
        assert last is not None
        raise last

    def status(self) -> list[dict[str, object]]:
        now = self.clock.monotonic()
        return [
            {"url": n.url, "up": n.down_until <= now, "failures": n.failures, "fetches": n.fetches}
            for n in self.nodes
        ]
