"""The router service: wires the pure resolver and edge table to the DNS listeners, the
health prober, the control-plane poller and the admin app, and owns all of their
background tasks (:meth:`RouterApp.start` / :meth:`RouterApp.stop`).

Admin endpoints (on ``admin_host:admin_port``):

* ``GET /healthz`` - 200 while the DNS listeners are up.
* ``GET /status`` - ``{"name", "role": "router", "dns": {...}, "generation", "degraded",
  "answer_ttl", "edges": [...], "client_prefixes", "answer_cache": {...},
  "control_plane": {...} | null}``; each edge is described by
  :meth:`router.table.EdgeTable.describe` plus its ``answers`` count.
* ``GET /metrics`` - ``cdn_dns_queries_total{transport,rcode}``,
  ``cdn_dns_answers_total{edge,reason}``, ``cdn_router_health_changes_total{edge,state}``,
  ``cdn_router_answer_cache_total{result}``, ``cdn_router_edge_up{edge}`` (1 while the
  router's probes find the edge healthy; read when scraped).
* ``POST /v1/rtt`` - client RTTs measured by an edge: ``{"edge": name, "samples":
  [{"prefix": "203.0.113.0/24", "rtt_ms": 12.3}, ...]}``; answers ``{"accepted": n,
  "rejected": m}`` (400 for a malformed body, 404 for an unknown edge).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from cdn_core.admin import create_admin_app
from cdn_core.clock import Clock, SystemClock
from cdn_core.metrics import new_registry
from cdn_core.service import bound_port, start_site
from router.config import RouterConfig
from router.control import ControlPlaneSync, merge_edges
from router.dnswire import MAX_QUERY, MEMOISED, SERVFAIL, WIRE_CACHE_MAX_QUERY, Outcome
from router.health import HealthChecker
from router.memo import ReplyMemo, client_ip, ip_text
from router.metrics import EdgeUpCollector, RouterMetrics
from router.protocol import DnsServer
from router.resolver import Resolver
from router.table import EdgeSpec, EdgeTable

log = logging.getLogger("cdn.router")


def static_edges(config: RouterConfig) -> list[EdgeSpec]:
    """The configured (or ``--edge``) edges as table specs."""
    return [EdgeSpec(e.name, e.address, e.port, e.probe_base(), "config") for e in config.edges]


class RouterApp:
    """One router instance. Use ``async with create_app(cfg) as app`` or call
    :meth:`start` and :meth:`stop`. ``dns_port``/``admin_port`` are the bound ports."""

    def __init__(
        self,
        config: RouterConfig,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.registry = registry if registry is not None else new_registry()
        self.metrics = RouterMetrics(self.registry)
        self._static = static_edges(config)
        self._registered: list[EdgeSpec] = []
        self.table = EdgeTable(config.health, config.load, config.latency, self._static)
        self.registry.register(EdgeUpCollector(self.table, self.clock))
        self.resolver = Resolver(config)
        self.memo = ReplyMemo(config.answers.cache_entries)
        self._last_failure_log = -1e9
        self.dns = DnsServer(
            self.handle,
            config.host,
            config.port,
            udp_handler=self.handle_udp,
            max_query=MAX_QUERY,
            max_reply=config.edns_udp_size,
            idle_timeout=config.tcp_idle_timeout,
            max_connections=config.tcp_max_connections,
        )
        self.admin = self._admin_app()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.health: HealthChecker | None = None
        self.control: ControlPlaneSync | None = None
        self._serving = False
        self.admin_port = 0

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def dns_port(self) -> int:
        return self.dns.port

    async def start(self) -> None:
        """Bind DNS (UDP+TCP) and admin listeners, then start probing.

        Raises:
            StartupError: a listener could not be bound (nothing is left running).
        """
        await self.dns.start()
        try:
            host, port = self.config.admin_address()
            self._runner = await start_site(self.admin, host, port)
        except BaseException:
            await self.dns.stop()
            raise
        self.admin_port = bound_port(self._runner)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0),
            headers={"User-Agent": f"cdn-router/{self.config.name}"},
        )
        self.health = HealthChecker(
            self.table, self.config.health, self.clock, self._session, self._health_changed
        )
        self._spawn(self.health.run(), "health")
        if self.config.control_plane.url:
            self.control = ControlPlaneSync(
                self.config.control_plane, self._session, self.clock, self._registry_update,
                self._service_domains,
            )
            self._spawn(self.control.run(), "control-plane")
        self._serving = True
        log.info(
            "router %s: DNS on %s:%d (UDP+TCP), admin on %s:%d, %d edges",
            self.config.name,
            self.config.host,
            self.dns_port,
            host,
            self.admin_port,
            len(self._static),
        )

    async def stop(self) -> None:
        """Stop listening, cancel and await every background task, close the HTTP client."""
        self._serving = False
        await self.dns.stop()
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.health is not None:
            await self.health.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RouterApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"router-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    # -- the hot path ----------------------------------------------------------------------
    def handle(self, data: bytes, client: str, tcp: bool) -> bytes | None:
        """Answer one DNS message from ``client`` (IP address text): the reply, or None
        to drop it. Called by the TCP listener, and by the UDP one where
        :meth:`handle_udp` is not used."""
        out = self._outcome(data, client, tcp)
        return out.wire if out is not None else _servfail(data)

    def handle_udp(self, data: bytes, addr: bytes) -> bytes | None:
        """Answer one UDP query from ``addr`` (a raw ``sockaddr_in``/``sockaddr_in6``, see
        :mod:`router.udpbatch`): from the reply memo when it holds the same query from
        the same address, else through the resolver (then memoised)."""
        ip = client_ip(addr)
        generation = self.table.generation
        now = self.clock.monotonic()
        wire = self.memo.get(data, ip, generation, now)
        if wire is not None:
            return wire
        out = self._outcome(data, ip_text(ip), False)
        if out is None:
            return _servfail(data)
        if (
            out.wire is not None
            and out.rcode in MEMOISED
            and len(data) <= WIRE_CACHE_MAX_QUERY
            and now < out.valid_until
        ):
            self.memo.put(
                data,
                ip,
                out.wire,
                generation,
                out.valid_until,
                self.metrics.for_outcome("udp", replace(out, cache_hit=True)),
            )
        return out.wire

    def _outcome(self, data: bytes, client: str, tcp: bool) -> Outcome | None:
        """Resolve one message and count it; None when resolving failed (SERVFAIL)."""
        transport = "tcp" if tcp else "udp"
        try:
            out = self.resolver.handle(
                data, client, tcp, self.table.snapshot(), self.clock.monotonic()
            )
        except Exception:  # noqa: BLE001 - the one catch-all per query: log, SERVFAIL
            # At most one traceback a minute: a flood of bad queries is not a log flood.
            now = time.monotonic()
            if now - self._last_failure_log >= 60:
                self._last_failure_log = now
                log.exception("query from %s failed (logged once a minute)", client)
            self.metrics.query(transport, "SERVFAIL").inc()
            return None
        for counter in self.metrics.for_outcome(transport, out):
            counter.value += 1
        return out

    # -- table updates ---------------------------------------------------------------------
    def _health_changed(self, edge: str, state: str) -> None:
        self.metrics.health_changes.labels(edge, state).inc()

    def _service_domains(self, domains: list[str]) -> None:
        self.resolver.set_service_domains(domains)
        self.table.invalidate()  # cached answers and replies were for the old names

    def _registry_update(self, edges: list[EdgeSpec]) -> None:
        self._registered = edges
        self.table.set_edges(merge_edges(self._static, edges))
        if self.health is not None:
            self.health.sync()

    # -- admin ---------------------------------------------------------------------------
    def _admin_app(self) -> web.Application:
        app = create_admin_app(
            name=self.config.name,
            role="router",
            registry=self.registry,
            status=self.status,
            healthy=lambda: self._serving,
        )
        app.router.add_post("/v1/rtt", self._post_rtt)
        return app

    def status(self) -> dict[str, Any]:
        """The ``/status`` body (see the module docstring)."""
        now = self.clock.monotonic()
        snap = self.table.snapshot()
        edges = self.table.describe(now)
        for e in edges:
            e["answers"] = self.metrics.edge_total(str(e["name"])).value
        cfg = self.config.answers
        return {
            "dns": {"host": self.config.host, "port": self.dns_port, "transports": ["udp", "tcp"]},
            "generation": snap.generation,
            "degraded": snap.degraded,
            "answer_ttl": cfg.degraded_ttl if snap.degraded else cfg.ttl,
            "edges": edges,
            "client_prefixes": self.table.client_prefix_count(),
            "answer_cache": {
                "entries": self.resolver.cache_size(),
                "udp_replies": len(self.memo),
                "hits": self.metrics.cache_hit.value,
                "misses": self.metrics.cache_miss.value,
            },
            "control_plane": None if self.control is None else self.control.describe(),
        }

    async def _post_rtt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _bad("body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("edge"), str):
            return _bad('expected {"edge": name, "samples": [...]}')
        samples = body.get("samples")
        if not isinstance(samples, list):
            return _bad("samples must be a list")
        if len(samples) > self.config.latency.max_samples_per_post:
            return _bad(f"at most {self.config.latency.max_samples_per_post} samples per post")
        edge = body["edge"]
        if edge not in {s.name for s in self.table.specs()}:
            return web.json_response({"error": f"unknown edge {edge!r}"}, status=404)
        now = self.clock.monotonic()
        accepted = rejected = 0
        for s in samples:
            try:
                prefix = self.table.prefixes.parse_prefix(s["prefix"])
                rtt = float(s["rtt_ms"])
            except (TypeError, KeyError, ValueError):
                rejected += 1
                continue
            if self.table.record_client_rtt(edge, prefix, rtt, now):
                accepted += 1
            else:
                rejected += 1
        return web.json_response({"accepted": accepted, "rejected": rejected})


def create_app(
    config: RouterConfig,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
) -> RouterApp:
    """The router's app factory: nothing is bound or started until ``start()``."""
    return RouterApp(config, clock=clock, registry=registry)


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _servfail(query: bytes) -> bytes | None:
    """A header-only SERVFAIL for ``query`` (RFC 1035 4.1.1), or None if it has none."""
    if len(query) < 12:
        return None
    flags = (0x8000 | (query[2] << 8 & 0x7900) | SERVFAIL) & 0xFFFF  # QR, opcode, RD kept
    return query[:2] + flags.to_bytes(2, "big") + bytes(8)
