"""A caching node: the HTTP data plane (httptools on uvloop), its store, upstream pool and
admin app, owned by one object with ``start()``/``stop()``.

``Node(config, store=None, clock=None, registry=None)`` is the app factory DESIGN.md asks
for; tests pass port 0 and read :attr:`Node.port` / :attr:`Node.admin_port`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from cdn_core.admin import create_admin_app
from cdn_core.clock import Clock, SystemClock
from cdn_core.metrics import new_registry
from cdn_core.node.control.admin import add_node_routes, selector_from_json
from cdn_core.node.control.sync import NodeSync
from cdn_core.node.filling.upstream import UpstreamPool
from cdn_core.node.observe.metrics import NodeMetrics
from cdn_core.node.observe.rtt import RttReporter
from cdn_core.node.policy.failover import ForcedFailover
from cdn_core.node.policy.ratelimit import RateLimiter
from cdn_core.node.policy.services import ServiceRouting
from cdn_core.node.policy.signed import SignedUrlGate
from cdn_core.node.proxy.handler import CachingProxy
from cdn_core.node.proxy.prewarm import prewarm
from cdn_core.node.settings.node import NodeConfig
from cdn_core.node.wire.h2 import H2ServerProtocol
from cdn_core.node.wire.h3 import H3ServerProtocol, serve_h3
from cdn_core.node.wire.http1 import HttpServerProtocol
from cdn_core.node.wire.quic_sni import QuicCertificates
from cdn_core.node.wire.stats import ServerStats
from cdn_core.node.wire.tls import AlpnSwitch, server_context
from cdn_core.optimize.transform import create_transformer
from cdn_core.service import bind_error, bound_port, start_site
from cdn_core.store import CacheStore, DiskTier, MemoryStore, PurgeSelector

log = logging.getLogger("cdn.node")

SWEEP_INTERVAL = 0.5  # seconds between checks of connection deadlines


class Node:
    def __init__(
        self,
        config: NodeConfig,
        *,
        store: CacheStore | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.config = config
        # SO_REUSEPORT on the data (and TLS) listeners: set by cdn_core.node.workers so
        # that N worker processes bind the same port and the kernel spreads connections.
        self._reuse_port = reuse_port
        self.clock = clock or SystemClock()
        self.registry = registry or new_registry()
        cache = config.cache
        self.store = store or MemoryStore(
            max_bytes=cache.max_bytes,
            max_object_bytes=cache.max_object_bytes,
            max_variants=cache.max_variants,
            policy=cache.policy,
            disk=DiskTier(
                cache.disk_path,
                cache.disk_max_bytes,
                max_object_bytes=cache.max_object_bytes,
                fsync=cache.disk_fsync,
            )
            if cache.disk_path
            else None,
        )
        self.metrics = NodeMetrics(self.registry, config.tier)
        self.stats = ServerStats(on_refuse=self._refused)
        self.rtt = (
            RttReporter(config.rtt_report, config.name)
            if config.tier == "edge" and config.rtt_report.url
            else None
        )
        if self.rtt is not None:
            self.stats.on_connect = self.rtt.observe
        self._refusal_log: dict[str, float] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.upstream = UpstreamPool(config.upstream, self.clock)
        self.transformer = (
            create_transformer(config.optimize, via=f"1.1 {config.name}",
                               registry=self.registry, tier=config.tier)
            if config.tier == "edge" and config.optimize.enabled
            else None
        )
        self.proxy = CachingProxy(config, self.store, self.upstream, self.clock, self.metrics,
                                  self.transformer)
        self.services = ServiceRouting(self.proxy, config, self.clock)
        self.signed_urls: SignedUrlGate | None = None
        if config.tier == "edge":
            # Every edge holds the gate (services may ask for signed URLs); it is among
            # the proxy's gates only while some prefix needs a signature.
            self.signed_urls = SignedUrlGate(config.signed_urls, self.clock)
            self.services.signed = self.signed_urls
            if config.signed_urls.path_prefixes:
                self.proxy.gates.append(self.signed_urls)
        self._policy_hooks()
        self._server: asyncio.base_events.Server | None = None
        self._tls_server: asyncio.base_events.Server | None = None
        self.tls_port = 0
        self._h2c_server: asyncio.base_events.Server | None = None
        self.h2c_port = 0
        self._h3_server: Any = None  # aioquic's QuicServer (UDP, the TLS port's number)
        self._alt_svc = b""  # Alt-Svc line of TLS responses while HTTP/3 is on
        self._connections: weakref.WeakSet[
            HttpServerProtocol | H2ServerProtocol | H3ServerProtocol
        ] = weakref.WeakSet()
        self._admin: web.AppRunner | None = None
        self._started = time.monotonic()
        self.port = 0
        self.admin_port = 0

    def _refused(self, reason: str) -> None:
        self.metrics.refused.labels(self.config.tier, reason).inc()
        # Logged at most once a minute per reason: a flood must not become a log flood.
        now = time.monotonic()
        if now - self._refusal_log.get(reason, -1e9) >= 60:
            self._refusal_log[reason] = now
            log.warning("refusing clients: %s (logged once a minute; see cdn_refused_total)",
                        reason)

    async def _sweep(self) -> None:
        """Enforce per-connection deadlines (slow heads and bodies, idle keep-alive)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = loop.time()
            for conn in list(self._connections):
                conn.expire(now)

    def _policy_hooks(self) -> None:
        """Tier policy: rate limiting at edges, the failover override at mid tiers, and
        the link to the control plane (see :mod:`cdn_core.node.control.sync`)."""
        cfg = self.config
        self.control_token: str | None = None
        self.ratelimiter: RateLimiter | None = None
        self.failover: ForcedFailover | None = None
        if cfg.tier == "edge":
            cluster = None
            if cfg.ratelimit.redis_url:
                from cdn_core.node.policy.ratelimit_redis import RedisBuckets

                cluster = RedisBuckets(cfg.ratelimit.redis_url)
            self.ratelimiter = RateLimiter(
                cfg.ratelimit, self.clock, self.registry, cfg.tier, cluster=cluster
            )
            self.ratelimiter.install(self.proxy.spawn, self.proxy.handle, self.proxy.gates)
        else:
            self.failover = ForcedFailover(self.proxy)
            self.proxy.gates.append(self.failover.gate)
        self.sync = NodeSync(
            cfg.control,
            name=cfg.name,
            tier=cfg.tier,
            clock=self.clock,
            purge=self.purge,
            selector=selector_from_json,
            set_policies=self.ratelimiter.set_policies if self.ratelimiter else None,
            set_failover=self.failover.set if self.failover else None,
            set_signing_keys=(
                self.signed_urls.set_distributed_keys if self.signed_urls is not None else None
            ),
            set_services=self.services.apply,
            running_services=self.services.running,
            on_synced=self.services.synced,
        )
        if self.sync.enabled:
            self.services.confirm_with(self.sync.beat)
            self.services.mid_tiers = self.sync.mid_tiers
        if self.ratelimiter is not None:
            self.ratelimiter.service_of = self.services.service_of

    def _protocol(self, scheme: str = "http") -> HttpServerProtocol:
        proto = HttpServerProtocol(self.proxy.handle, self.config.limits, self.stats, scheme)
        self._connections.add(proto)
        return proto

    def _h2_protocol(self, scheme: str = "https") -> H2ServerProtocol:
        proto = H2ServerProtocol(self.proxy.handle, self.config.limits, self.stats, scheme)
        self._connections.add(proto)
        return proto

    def _tls_protocol(self) -> asyncio.Protocol:
        def http1() -> HttpServerProtocol:
            proto = self._protocol("https")
            proto.alt_svc = self._alt_svc
            return proto

        def h2() -> H2ServerProtocol:
            proto = self._h2_protocol("https")
            proto.alt_svc = self._alt_svc
            return proto

        if not self.config.tls.http2:
            return http1()
        return AlpnSwitch(http1, h2)

    async def start(self) -> None:
        """Bind the data and admin ports and start serving.

        Raises:
            StartupError: a port cannot be bound (the message names it).
        """
        cfg = self.config
        self.control_token = cfg.control.resolve_token()
        await self.upstream.start()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: self._protocol("http"),
                cfg.host,
                cfg.port,
                backlog=2048,
                reuse_address=True,
                reuse_port=self._reuse_port or None,
                start_serving=False,
            )
        except OSError as exc:
            await self.upstream.close()
            raise bind_error(cfg.host, cfg.port, exc) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        if cfg.tls.port is not None:
            await self._start_tls(loop)
        if cfg.tls.h2c_port is not None:
            await self._start_h2c(loop)
        self.proxy.filler.own_ports.update(
            p for p in (self.port, self.tls_port, self.h2c_port) if p
        )
        admin = create_admin_app(
            name=cfg.name, role=cfg.tier, registry=self.registry, status=self.status
        )
        add_node_routes(admin, self)
        host, port = cfg.admin_address()
        try:
            self._admin = await start_site(admin, host, port)
        except Exception:
            self._server.close()
            await self.upstream.close()
            raise
        self.admin_port = bound_port(self._admin)
        # Catch up on missed purges before the data port accepts anyone.
        advertised = cfg.control.advertise_host or host
        self.sync.set_address(cfg.host, self.port, f"http://{advertised}:{self.admin_port}")
        await self.sync.open(self.control_token)
        await self.sync.before_serving(self.store.stats()["entries"] > 0)
        self.sync.begin()
        if isinstance(self.store, MemoryStore):
            self.store.start()  # the disk tier's writer thread
        await self._server.start_serving()
        if self._tls_server is not None:
            await self._tls_server.start_serving()
        if self._h2c_server is not None:
            await self._h2c_server.start_serving()
        self._sweeper = loop.create_task(self._sweep())
        if self.rtt is not None:
            self.rtt.start()
        log.info(
            "%s %s serving on %s:%d, admin on %s:%d, upstreams %s",
            cfg.tier,
            cfg.name,
            cfg.host,
            self.port,
            host,
            self.admin_port,
            ", ".join(cfg.upstream.urls),
        )

    async def _start_tls(self, loop: asyncio.AbstractEventLoop) -> None:
        """The HTTPS listener (TLS 1.2+, SNI): same handler, ``https`` in the cache key.

        Raises:
            ConfigError: a certificate cannot be loaded. StartupError: port in use.
        """
        cfg = self.config
        assert cfg.tls.port is not None and self._server is not None
        try:
            ctx = server_context(cfg.tls.certificates, http2=cfg.tls.http2)
            self._tls_server = await loop.create_server(
                self._tls_protocol, cfg.host, cfg.tls.port, ssl=ctx,
                backlog=2048, reuse_address=True, reuse_port=self._reuse_port or None,
                start_serving=False, ssl_handshake_timeout=cfg.limits.header_timeout,
            )
        except OSError as exc:
            await self._abandon_start()
            raise bind_error(cfg.host, cfg.tls.port, exc) from exc
        except Exception:
            await self._abandon_start()
            raise
        self.tls_port = self._tls_server.sockets[0].getsockname()[1]
        if cfg.tls.http3:
            await self._start_h3()

    async def _start_h3(self) -> None:
        """HTTP/3 on UDP at the TLS port's number (RFC 9114 3.1), advertised by
        ``Alt-Svc`` on every TLS response (RFC 7838).

        Raises:
            ConfigError: a certificate cannot be loaded. StartupError: the UDP port
            cannot be bound.
        """
        cfg = self.config
        try:
            certificates = QuicCertificates(cfg.tls.certificates)
            self._h3_server = await serve_h3(
                cfg.host, self.tls_port, certificates=certificates,
                handler=self.proxy.handle, limits=cfg.limits, stats=self.stats,
                track=self._connections.add, max_datagram_size=cfg.tls.h3_max_datagram_size,
            )
        except OSError as exc:
            await self._abandon_start()
            raise bind_error(cfg.host, self.tls_port, exc) from exc
        except Exception:
            await self._abandon_start()
            raise
        self._alt_svc = f'Alt-Svc: h3=":{self.tls_port}"; ma=86400\r\n'.encode()

    async def _start_h2c(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cleartext HTTP/2 with prior knowledge (RFC 9113 3.3): ``http`` in the key.

        Raises:
            StartupError: port in use.
        """
        cfg = self.config
        assert cfg.tls.h2c_port is not None and self._server is not None
        try:
            self._h2c_server = await loop.create_server(
                lambda: self._h2_protocol("http"), cfg.host, cfg.tls.h2c_port,
                backlog=2048, reuse_address=True, reuse_port=self._reuse_port or None,
                start_serving=False,
            )
        except OSError as exc:
            await self._abandon_start()
            raise bind_error(cfg.host, cfg.tls.h2c_port, exc) from exc
        self.h2c_port = self._h2c_server.sockets[0].getsockname()[1]

    async def _abandon_start(self) -> None:
        """A listener could not be bound: close those already bound and the upstream pool,
        so a failed start leaves nothing open."""
        for server in (self._server, self._tls_server, self._h2c_server):
            if server is not None:
                server.close()
        await self.upstream.close()

    async def stop(self) -> None:
        """Stop accepting, close client connections, cancel owned tasks, close pools."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self.rtt is not None:
            await self.rtt.stop()
        servers = [
            s for s in (self._server, self._tls_server, self._h2c_server) if s is not None
        ]
        for server in servers:
            server.close()
        for conn in list(self._connections):
            conn.close()
        if self._h3_server is not None:
            self._h3_server.close()
        for server in servers:
            await server.wait_closed()
        await self.sync.stop()
        await self.proxy.close()
        if self.transformer is not None:
            await self.transformer.aclose()
        await self.upstream.close()
        await self.services.close()
        if isinstance(self.store, MemoryStore):
            await asyncio.to_thread(self.store.close)  # flush queued disk writes
        if self.ratelimiter is not None:
            await self.ratelimiter.close()
        if self._admin is not None:
            await self._admin.cleanup()

    # the control link (cdn_core.node.control.admin.ControlledNode) --------------------------
    @property
    def name(self) -> str:
        return self.config.name

    def note_applied(self, seq: Any) -> None:
        self.sync.note_applied(seq)

    async def prewarm(self, url: str) -> str:
        return await prewarm(self.proxy, url)

    def purge(self, selector: PurgeSelector) -> int:
        selector = self.services.purge_selector(selector)
        count = self.store.purge(selector, self.clock.time())
        self.metrics.purged.inc(count)
        if self.transformer is not None:
            # Variants of removed entries are detected on their next lookup; drop the
            # obvious ones now so they free memory at once.
            if selector.type == "all":
                self.transformer.clear()
            elif selector.type == "url":
                self.transformer.forget(selector.value)
        return count

    def status(self) -> dict[str, Any]:
        """``/status`` body: load (in-flight requests, connections, CPU seconds), request
        counts by cache status, store counters and upstream state."""
        st = self.store.stats()
        self.metrics.cache_bytes.set(st["bytes"])
        self.metrics.cache_entries.set(st["entries"])
        counts = self.metrics.request_counts()
        return {
            "tier": self.config.tier,
            "healthy": True,
            "in_flight": sum(1 for conn in list(self._connections) if conn.busy),
            "connections": self.stats.connections,
            "requests": self.stats.requests,
            "bad_requests": self.stats.bad_requests,
            "cpu_seconds": time.process_time(),
            "uptime_seconds": time.monotonic() - self._started,
            "cache": {
                **st,
                "hits": counts["hit"],
                "misses": counts["miss"],
                "stale": counts["stale"],
                "revalidated": counts["revalidated"],
                "requests_by_status": counts,
            },
            "upstreams": self.upstream.status(),
            "control": self.sync.describe(),
            "services": self.services.describe(),
            "ratelimit": self.ratelimiter.status() if self.ratelimiter else None,
            "failover": None if self.failover is None else {
                "forced": self.failover.forced, "served": self.failover.served,
                "services": sorted(self.failover.services)
            },
        }
