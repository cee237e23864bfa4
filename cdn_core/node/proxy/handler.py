"""The caching proxy handler shared by edges and mid tiers.

Per request: build the primary key (RFC 9111 2), look up a matching variant (4.1), and let
:func:`~cdn_core.http_cache.decision.decide` say whether to serve it, serve it stale, or
revalidate. A fresh hit is answered synchronously from the pre-serialised head (only
``Age`` and ``Cache-Status`` are written per request). Misses and revalidations are
collapsed per key by :mod:`cdn_core.node.filling` (one upstream fetch, whose body every
waiting request streams as it arrives); methods the cache does not answer go through
:mod:`cdn_core.node.proxy.passthrough`; responses are written by
:mod:`cdn_core.node.proxy.delivery` to the request's
:class:`~cdn_core.node.exchange.channel.ResponseChannel`, whatever protocol carried it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cdn_core.clock import Clock
from cdn_core.heads import plain_response
from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.decision import Action, decide
from cdn_core.node.exchange.channel import Gate, ResponseChannel
from cdn_core.node.exchange.keys import (
    normalize_host,
    normalize_target,
    primary_key,
    split_absolute,
    valid_host,
)
from cdn_core.node.exchange.request import PROTOCOL_OF_VERSION, Request
from cdn_core.node.exchange.sanitize import UNTRUSTED_REQUEST_FIELDS, ForwardedTrust
from cdn_core.node.filling.filler import UpstreamFiller
from cdn_core.node.filling.upstream import UpstreamPool
from cdn_core.node.observe.accesslog import AccessLog
from cdn_core.node.observe.metrics import NodeMetrics
from cdn_core.node.proxy.delivery import ResponseWriter
from cdn_core.node.proxy.edits import (
    EditedChannel,
    apply_plan,
    optimisation_off,
    send_redirect,
)
from cdn_core.node.proxy.passthrough import Passthrough
from cdn_core.node.settings.node import NodeConfig
from cdn_core.optimize.transform import NEEDS_ENCODING, Transformer
from cdn_core.services.compiled import NO_CHANGE, CompiledService, ServiceSet
from cdn_core.store import CacheStore, StoredResponse

log = logging.getLogger("cdn.node")

HOST_CACHE_SIZE = 4096  # validated Host values remembered
REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})
# What a 405 offers instead (RFC 9110 15.5.6): GET and HEAD from the cache, the rest
# passed through to the origin.
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


class CachingProxy:
    """The node's request handler, :data:`~cdn_core.node.exchange.channel.Handler` (see
    the module docstring)."""

    def __init__(
        self,
        config: NodeConfig,
        store: CacheStore,
        upstream: UpstreamPool,
        clock: Clock,
        metrics: NodeMetrics,
        transformer: Transformer | None = None,
    ) -> None:
        self.config = config
        # Edge content optimisation (compression and image variants, cdn_core.optimize).
        self.transformer = transformer
        self.store = store
        self.upstream = upstream
        self.clock = clock
        self.metrics = metrics
        metrics.watch(store.stats, upstream.status)
        self.access_log = AccessLog(config.access_log, node=config.name, tier=config.tier)
        self.writer = ResponseWriter(config.name)
        self.via = self.writer.via
        self.filler = UpstreamFiller(config, store, upstream, clock, metrics, self.via, self.spawn)
        self.passthrough = Passthrough(self.filler, self.writer)
        self._revalidating: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Host values already validated, each with its normal form for the cache key (a
        # handful in practice: the sites served).
        self._hosts: dict[str | None, str] = {}
        self._now = clock.time  # bound once: the hit path reads the time per request
        self._hits = {v: metrics.counted(v)["hit"] for v in PROTOCOL_OF_VERSION}
        self._hit_bytes = metrics.body_bytes["hit"]
        # Policy hooks a tier installs (edge rate limiting, ...): each sees the request
        # first and returns True to let it through, or answers it itself and returns False.
        self.gates: list[Gate] = []
        # Forwarding claims and overrides: removed on arrival unless a trusted forwarder
        # (the mid tier's edges) sent them; then its X-Forwarded-Proto is the scheme.
        self.untrusted = UNTRUSTED_REQUEST_FIELDS
        self.forwarding = ForwardedTrust(config.forwarders())
        # The services this node runs (cdn_core.node.policy.services swaps the whole set
        # at once); None: one implicit site for every host.
        self.services: ServiceSet | None = None
        # Until when (wall seconds) the services are known current; past it, a request
        # first waits for ``resync`` (a node back from a partition catches up on versions
        # before it serves a service again).
        self.services_confirmed_until = math.inf
        self.resync: Callable[[], Awaitable[None]] | None = None
        self._edge = config.tier == "edge"  # response rules apply toward clients only

    # task ownership ----------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel and await every task this handler started."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # entry point -------------------------------------------------------------------------
    def handle(self, req: Request, conn: ResponseChannel) -> None:
        """Answer ``req`` on ``conn`` (the protocol's handler): synchronously for a hit,
        from a task otherwise. Never raises: an unexpected error is logged and answered
        with 500. A fresh hit is answered in this one frame; everything else goes on in
        :meth:`_not_fresh`."""
        if self.access_log.sample:  # off: this one test (cdn_core.node.observe.accesslog)
            conn = self.access_log.wrap(req, conn)
        try:
            fields = req.fields
            if not self.untrusted.isdisjoint(fields):
                self.forwarding.admit(req)
            host = fields.get("host")
            key_host = self._hosts.get(host)
            if key_host is None:
                if not host or not valid_host(host):
                    # RFC 9112 3.2: a request without exactly one valid Host gets 400.
                    self._fail(
                        conn, 400, "Bad Request", "missing, repeated or invalid Host header"
                    )
                    return
                if len(self._hosts) >= HOST_CACHE_SIZE:
                    self._hosts.clear()
                key_host = self._hosts[host] = normalize_host(host)
            assert host is not None  # checked above (or found among checked hosts)
            if req.method in REFUSED_METHODS:
                # CONNECT would make us a tunnel; TRACE would echo the client's cookies and
                # credentials back to a script (cross-site tracing). Neither reaches a tier.
                self._fail(conn, 405, "Method Not Allowed", f"{req.method} is not supported",
                           allow=ALLOWED_METHODS)  # fmt: skip
                return
            target = req.target
            if target[:1] != "/":  # (cheaper than startswith, which parses its arguments)
                try:
                    # RFC 9112 3.2.2: an absolute-form target's authority is the host.
                    host, target = split_absolute(target)
                except ValueError:
                    self._fail(conn, 400, "Bad Request", "request target must be origin-form")
                    return
                fields["host"] = host
                req.headers = [(n, host if n.lower() == "host" else v) for n, v in req.headers]
                key_host = normalize_host(host)
            if "%" in target or "/." in target or target[-1] == "?":
                target = normalize_target(target)
            if self.gates:
                # Signed URLs and rate limits judge the target the cache keys and fetches
                # (origin-form, normalised, the authority as Host): "/%70rivate/a" or an
                # absolute-form URL must not slip past a prefix that "/private/a" meets.
                req.target = target
                for gate in self.gates:
                    if not gate(req, conn):
                        return
                target = req.target  # a gate may take its own parameters off (signed URLs)
            if self.transformer is not None and "?" in target:
                # A signed resize shares the stored original (the variant is the
                # transformer's).
                target = self.transformer.source_target(target)
            services = self.services
            if services is None:
                key = primary_key(req.scheme, key_host, target)
            elif self.resync is not None and self._now() > self.services_confirmed_until:
                _take_interim(req, conn)
                self.spawn(self._guard(conn, self._after_resync(req, conn)))
                return
            else:
                # select() memoises too; reading its memo here saves a call per hit
                svc = services.by_host.get(key_host) or services.select(key_host)
                if svc is None:
                    # RFC 9110 15.5.20: not a host this CDN serves; never another site's
                    # content, never a request to any origin.
                    self._fail(conn, 421, "Misdirected Request",
                               f"no site here for host {key_host[:253]}")
                    return
                prep = svc.prepare(req.method, req.scheme, key_host, target)
                plan = prep.plan
                if plan.redirect is not None:
                    send_redirect(conn, *plan.redirect)
                    return
                req.service, req.service_path = svc, prep.path
                key = svc.full_key(prep, fields.get) if svc.keys_fields else prep.key
                if plan is not NO_CHANGE:
                    target = apply_plan(req, plan, prep.path, prep.query) or target
                if svc.edits_responses and self._edge:
                    conn = EditedChannel(conn, svc, req.method, prep.path)
                if plan.bypass:
                    _take_interim(req, conn)
                    self.spawn(self._guard(conn, self.passthrough.forward(req, conn, key,
                                                                          target)))
                    return
            if req.method not in ("GET", "HEAD"):
                _take_interim(req, conn)
                self.spawn(self._guard(conn, self.passthrough.forward(req, conn, key, target)))
                return
            entry = self.store.lookup(key, fields)
            if entry is not None and "cache-control" not in fields and "pragma" not in fields:
                # The hot path: no request directives, so a fresh entry is a hit; the same
                # verdict decide() gives (RFC 9111 4.2), without building one.
                now = self._now()
                fr = entry.freshness
                if now < fr.fresh_until and not entry.cc.no_cache:
                    self._hits[req.version].value += 1
                    self._hit_bytes.value += len(entry.body)
                    self._deliver(
                        req,
                        conn,
                        entry,
                        entry.hit_lines
                        if now < entry.hit_lines_until
                        else self.writer.fresh_hit_lines(entry, now),
                    )
                    return
            self._not_fresh(req, conn, key, target, entry)
        except Exception:  # the one catch-all of the synchronous path
            log.exception("error handling %s %s", req.method, req.target)
            self._fail(conn, 500, "Internal Server Error", "internal error")

    __call__ = handle

    def service_for(self, host: str) -> CompiledService | None:
        """The service this node runs for a normalised host, or None (none for the host,
        or no services at all)."""
        services = self.services
        return services.select(host) if services is not None else None

    async def _after_resync(self, req: Request, conn: ResponseChannel) -> None:
        assert self.resync is not None
        await self.resync()
        self.handle(req, conn)

    def _fail(
        self,
        conn: ResponseChannel,
        status: int,
        reason: str,
        msg: str,
        allow: str | None = None,
    ) -> None:
        head, body = plain_response(status, reason, msg, allow=allow)
        conn.respond(head, b"", body, False)

    def _not_fresh(
        self,
        req: Request,
        conn: ResponseChannel,
        key: str,
        target: str,
        entry: StoredResponse | None,
    ) -> None:
        """A request the hot path did not answer: request directives (RFC 9111 5.2.1), a
        stale or no-cache entry, or nothing stored."""
        fields = req.fields
        req_cc = parse_cache_control(fields.get("cache-control"))
        lines = self.writer.status_lines
        fwd = "uri-miss"
        if entry is not None:
            d = decide(
                entry.freshness,
                entry.cc,
                req_cc,
                self.clock.time(),
                pragma_no_cache="cache-control" not in req.fields
                and "no-cache" in req.fields.get("pragma", ""),
            )
            if d.action is Action.FRESH:
                self.metrics.counted(req.version)["hit"].inc()
                self.metrics.body_bytes["hit"].inc(len(entry.body))
                self._deliver(req, conn, entry, lines(d.age, b"hit; ttl=%d" % int(d.ttl)))
                return
            if d.action is not Action.REVALIDATE:
                self.metrics.counted(req.version)["stale"].inc()
                self.metrics.body_bytes["stale"].inc(len(entry.body))
                self.metrics.stale_served.inc()
                if d.action is Action.STALE_OK:
                    self._deliver(req, conn, entry, lines(d.age, b"hit; detail=stale"))
                    return
                self._deliver(
                    req, conn, entry, lines(d.age, b"hit; detail=stale-while-revalidate")
                )
                if key not in self._revalidating:
                    self._revalidating.add(key)
                    self.spawn(self._background_revalidate(key, req, target, entry))
                return
            if req_cc.only_if_cached:
                # RFC 9111 5.2.1.7: what is stored needs the origin, which the client forbade.
                self._fail(conn, 504, "Gateway Timeout", "only-if-cached and not usable")
                return
            if (
                d.ttl <= 0
                and self.filler.upstream_for(req).all_down()
                and self.filler.stale_on_error(entry, req, self.clock.time())
            ):
                # Serve-stale mode: every upstream failed moments ago, so answer from the
                # stored copy at once instead of sending each request to a dead origin;
                # the pool retries the upstream after retry_after seconds (one request
                # per tier then, not one per client).
                self.metrics.counted(req.version)["stale"].inc()
                self.metrics.stale_served.inc()
                self._deliver(
                    req, conn, entry, lines(d.age, b"hit; fwd=stale; detail=upstream-down")
                )
                return
            fwd = "request" if d.ttl > 0 else "stale"
        elif req_cc.only_if_cached:
            # RFC 9111 5.2.1.7: nothing stored that satisfies the request.
            self._fail(conn, 504, "Gateway Timeout", "only-if-cached and not in cache")
            return
        elif self.store.variants(key):
            fwd = "vary-miss"
        self.spawn(self._guard(conn, self._miss(req, conn, key, target, entry, fwd)))

    async def _guard(self, conn: ResponseChannel, coro: Coroutine[Any, Any, None]) -> None:
        """The one catch-all of the asynchronous path: log and answer 500."""
        try:
            await coro
        except asyncio.CancelledError:
            conn.close()
            raise
        except Exception:
            log.exception("error while handling a request")
            self._fail(conn, 500, "Internal Server Error", "internal error")

    # misses and revalidation -------------------------------------------------------------
    async def _miss(
        self,
        req: Request,
        conn: ResponseChannel,
        key: str,
        target: str,
        stale: StoredResponse | None,
        fwd: str,
    ) -> None:
        _take_interim(req, conn)
        result = await self.filler.collapsed(key, req, target, stale, fwd)
        meta = result.meta
        if result.stale:
            status = "stale"
            self.metrics.stale_served.inc()
        elif meta.status >= 500:
            status = "error"
        else:
            status = "revalidated" if "fwd-status=304" in result.cache_status else "miss"
        self.metrics.counted(req.version)[status].inc()
        age = meta.freshness.age(self.clock.time())
        cs = result.cache_status.encode()
        fill = result.fill
        if fill is not None and "; stored" not in result.cache_status:
            # Say "stored" only when it is (RFC 9211 2.7): the head is held until that is
            # known (it may be already: a small body arrives with its head).
            if fill.stored is None:
                await fill.decided()
            if fill.stored:
                cs += b"; stored"
        t = self.transformer
        if (fill is not None and t is not None and t.needs_body(meta, req)
                and not (req.service is not None and optimisation_off(req, t.kind(meta)))):
            # A variant is made from the whole body: wait for it, then answer as a hit does.
            await fill.wait_done()
            if fill.entry is not None:
                meta, fill = fill.entry, None
        if result.stream is not None:
            await self.writer.send_stream(req, conn, meta, result.stream, age, cs)
        elif fill is not None:
            await self.writer.send_fill(req, conn, fill, age, cs)
        else:
            self._deliver(req, conn, meta, self.writer.status_lines(age, cs))
        self.metrics.body_bytes[status].inc(fill.size if fill is not None else len(meta.body))

    def _deliver(
        self,
        req: Request,
        conn: ResponseChannel,
        entry: StoredResponse,
        lines: bytes,
    ) -> None:
        """Send a complete response with this request's ``Age`` and ``Cache-Status``
        ``lines`` (:meth:`ResponseWriter.status_lines`), or the optimised variant the
        transformer chooses for this client (made off the event loop when it does not exist
        yet)."""
        t = self.transformer
        if t is not None:
            kind = entry.opt_kind
            if kind is None:
                kind = entry.opt_kind = t.kind(entry)
            if kind == "fixed" or (req.service is not None and optimisation_off(req, kind)):
                # Sent as stored to every client (see cdn_core.optimize.transform).
                self.writer.send_entry(req, conn, entry, lines)
                return
            choice = t.lookup(entry, req)
            if choice is NEEDS_ENCODING:
                self.spawn(
                    self._guard(conn, self._deliver_made(req, conn, entry, lines))
                )
                return
            if choice is not None:
                entry = choice
        self.writer.send_entry(req, conn, entry, lines)

    async def _deliver_made(
        self,
        req: Request,
        conn: ResponseChannel,
        entry: StoredResponse,
        lines: bytes,
    ) -> None:
        assert self.transformer is not None
        made = await self.transformer.make(entry, req)
        self.writer.send_entry(req, conn, made or entry, lines)

    async def _background_revalidate(
        self, key: str, req: Request, target: str, stale: StoredResponse
    ) -> None:
        try:
            result = await self.filler.collapsed(key, req, target, stale, "stale")
            await result.complete()
        finally:
            self._revalidating.discard(key)


def _take_interim(req: Request, conn: ResponseChannel) -> None:
    """Let 1xx responses from upstream reach this client while it waits (RFC 9110 15.2:
    never to an HTTP/1.0 client)."""
    if req.version != "1.0":
        req.interim = conn.interim
