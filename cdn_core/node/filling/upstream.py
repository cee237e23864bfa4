"""Upstream selection and fetching: rendezvous hashing over the configured upstreams,
passive health (a failed connection marks an upstream down for ``retry_after`` seconds
and the request moves to the next node in rendezvous order), one bounded aiohttp
connection pool per upstream, https upstreams verified."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import yarl

from cdn_core.clock import Clock
from cdn_core.errors import ConfigError, UpstreamError, UpstreamTimeout
from cdn_core.hashing import rendezvous_order
from cdn_core.node.filling.interim import InterimResponse, InterimSink, reporting
from cdn_core.node.settings.upstream import UpstreamSettings

log = logging.getLogger("cdn.node")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def client_context(ca_file: str | None, verify: bool = True) -> ssl.SSLContext:
    """Context for https upstreams: certificates verified (against ``ca_file`` when given,
    else the system's CAs), hostname checked, TLS 1.2 or newer; ``verify`` False turns
    the certificate and hostname checks off (a service's ``verify_tls: false``).

    Raises:
        ConfigError: ``ca_file`` cannot be loaded.
    """
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            ctx.load_verify_locations(ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{ca_file}: upstream.ca_file cannot be loaded: {exc}") from exc
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class UpstreamNode:
    url: str
    failures: int = 0
    down_until: float = 0.0
    fetches: int = 0
    healthy: bool = True  # from active probes (always True when they are off)
    streak: int = 0  # consecutive probe results that disagree with ``healthy``


@dataclass
class UpstreamResponse:
    """A complete upstream response: ``headers`` as ``(name, value)`` strings in order."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    node: str


class UpstreamStream:
    """An upstream response whose head has arrived and whose body is read with
    :meth:`chunks`; :meth:`close` must be called once (it returns a fully read connection
    to the pool and discards any other)."""

    def __init__(self, resp: aiohttp.ClientResponse, node: UpstreamNode) -> None:
        self._resp = resp
        self.status = resp.status
        self.reason = resp.reason or ""
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers]
        self.content_length: int | None = resp.content_length
        self.node = node.url
        self._complete = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive.

        Raises:
            UpstreamTimeout, UpstreamError: the body stopped before it was complete
                (RFC 9112 8: a message cut short is incomplete and never cached).
        """
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self.node}: body timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(f"{self.node}: body incomplete: {exc}") from exc
        self._complete = True

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    def close(self) -> None:
        if self._complete:
            self._resp.release()
        else:
            self._resp.close()


def _upstream_url(base: str, target: str) -> yarl.URL | str:
    """The URL for ``target`` (origin-form, normalised as the cache key holds it,
    :func:`~cdn_core.node.exchange.keys.normalize_target`) at upstream ``base``. An ASCII
    target goes on byte for byte (``encoded=True``), so the node fetches what it keys
    (RFC 9110 7.1) instead of what yarl's requoting makes of it (``|`` as ``%7C``), and
    skips that parse (about 3% of a miss); anything else is left to yarl to encode."""
    if target.isascii():
        return yarl.URL(base + target, encoded=True)
    return base + target


class UpstreamPool:
    def __init__(self, settings: UpstreamSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.nodes = [UpstreamNode(u.rstrip("/")) for u in settings.urls]
        self._session: aiohttp.ClientSession | None = None
        self._prober: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, limit_per_host=s.pool_size,
                ssl=client_context(s.ca_file, s.verify_tls)
            ),
            timeout=aiohttp.ClientTimeout(total=s.timeout, sock_connect=s.connect_timeout),
            auto_decompress=False,
            # A proxy forwards each client's Cookie and Set-Cookie and keeps none: a jar
            # would send one client's cookies with everyone's requests.
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            response_class=InterimResponse,
        )
        if s.health_path:
            self._prober = asyncio.get_running_loop().create_task(self._probe_forever())

    async def _probe_forever(self) -> None:
        """Active health checks: ``fall`` failed probes take an upstream out of rotation,
        ``rise`` good ones bring it back (like nginx's and HAProxy's checks)."""
        s = self.settings
        while True:
            await asyncio.gather(*(self._probe(n) for n in self.nodes))
            await asyncio.sleep(s.health_interval)

    async def _probe(self, node: UpstreamNode) -> None:
        s = self.settings
        assert self._session is not None and s.health_path is not None
        try:
            async with self._session.get(
                node.url + s.health_path,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=s.health_timeout),
            ) as resp:
                await resp.read()
                ok = resp.status < 500
        except (TimeoutError, aiohttp.ClientError, OSError):
            ok = False
        if ok == node.healthy:
            node.streak = 0
            return
        node.streak += 1
        if node.streak >= (s.rise if ok else s.fall):
            node.healthy = ok
            node.streak = 0
            log.warning("upstream %s is %s", node.url, "up" if ok else "down")

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
            self._prober = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def order(self, key: str) -> list[UpstreamNode]:
        """Upstreams to try for ``key``: in rendezvous order (or list order with
        ``selection: ordered``), those down by active or passive checks moved last, so a
        request still goes somewhere when every upstream looks down."""
        if self.settings.selection == "ordered":
            ranked = self.nodes
        else:
            ranked = rendezvous_order(key, self.nodes, lambda n: n.url)
        now = self.clock.monotonic()
        up = [n for n in ranked if n.healthy and n.down_until <= now]
        return up + [n for n in ranked if n not in up]

    def all_down(self) -> bool:
        """True when every upstream is out of rotation (failed probes, or a failed request
        within ``retry_after`` seconds)."""
        now = self.clock.monotonic()
        return bool(self.nodes) and all(
            not n.healthy or n.down_until > now for n in self.nodes
        )

    def _failed(self, node: UpstreamNode) -> None:
        node.failures += 1
        if node.failures >= self.settings.fail_threshold:
            node.down_until = self.clock.monotonic() + self.settings.retry_after

    async def open(
        self,
        key: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        on_interim: InterimSink | None = None,
    ) -> UpstreamStream:
        """Send one request and return once the response head has arrived, trying
        upstreams in rendezvous order until one answers (only idempotent methods move on).
        1xx responses read before the final one go to ``on_interim``
        (:mod:`cdn_core.node.filling.interim`).

        Raises:
            UpstreamTimeout: the last upstream tried timed out.
            UpstreamError: no upstream is configured or none answered with a valid head.
        """
        if self._session is None or not self.nodes:
            raise UpstreamError("no upstream configured")
        last: Exception | None = None
        candidates = self.order(key)
        if method not in IDEMPOTENT:
            candidates = candidates[:1]
        for node in candidates:
            try:
                with reporting(on_interim):
                    resp = await self._session.request(
                        method,
                        _upstream_url(node.url, target),
                        headers=headers,
                        data=body,
                        allow_redirects=False,
                    )
            except TimeoutError as exc:
                self._failed(node)
                last = UpstreamTimeout(f"{node.url}: timed out")
                last.__cause__ = exc
                continue
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                self._failed(node)
                last = UpstreamError(f"{node.url}: {type(exc).__name__}: {exc}")
                last.__cause__ = exc
                continue
            node.fetches += 1
            if resp.status >= 500 and resp.status not in (501, 505):
                # An upstream answering server errors is unhealthy for passive purposes:
                # stale copies answer without asking it again until retry_after.
                self._failed(node)
            else:
                node.failures = 0
                node.down_until = 0.0
            return UpstreamStream(resp, node)
        assert last is not None
        raise last

    async def fetch(
        self,
        key: str,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        on_interim: InterimSink | None = None,
    ) -> UpstreamResponse:
        """Like :meth:`open`, then read the whole body.

        Raises:
            UpstreamTimeout, UpstreamError: as :meth:`open`, or the body was cut short.
        """
        stream = await self.open(key, method, target, headers, body, on_interim)
        try:
            data = await stream.read()
        finally:
            stream.close()
        return UpstreamResponse(stream.status, stream.reason, stream.headers, data, stream.node)

    def status(self) -> list[dict[str, object]]:
        now = self.clock.monotonic()
        return [
            {
                "url": n.url,
                "up": n.healthy and n.down_until <= now,
                "failures": n.failures,
                "fetches": n.fetches,
            }
            for n in self.nodes
        ]
