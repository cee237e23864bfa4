"""The caching proxy handler shared by edges and mid tiers.

Per request: build the primary key (RFC 9111 2), look up a matching variant (4.1), and let
:func:`~cdn_core.http_cache.decision.decide` say whether to serve it, serve it stale, or
revalidate. A fresh hit is answered synchronously from the pre-serialised head (only
``Age`` and ``Cache-Status`` are written per request). Misses and revalidations are
collapsed per key: one upstream fetch, whose body every waiting request streams as it
arrives (:mod:`cdn_core.node.fill`). Responses that may not be shared (``private``,
``no-store``, ``Set-Cookie``...) are never handed to waiters, and their key is remembered
(hit-for-miss) so later requests go upstream in parallel instead of queueing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urljoin

from cdn_core.clock import Clock
from cdn_core.errors import UpstreamError, UpstreamTimeout
from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.conditional import selects_stored
from cdn_core.http_cache.decision import Action, decide, may_serve_stale_on_error
from cdn_core.http_cache.storability import storable
from cdn_core.http_cache.vary import secondary_key
from cdn_core.node.accesslog import AccessLog
from cdn_core.node.config import NodeConfig
from cdn_core.node.fill import Fill, FillResult
from cdn_core.node.keys import (
    cache_key,
    key_from_url,
    normalize_host,
    normalize_target,
    split_absolute,
    valid_host,
)
from cdn_core.node.metrics import NodeMetrics
from cdn_core.node.protocol import HttpServerProtocol, Request, simple_response
from cdn_core.node.response import (
    HOP_BY_HOP,
    build_entry,
    combine,
    connection_named,
    refresh_from_304,
    serialize_head,
)
from cdn_core.node.sanitize import forwarded_fields, reflected, reflection_probes
from cdn_core.node.sender import ResponseWriter
from cdn_core.node.upstream import UpstreamPool, UpstreamStream
from cdn_core.optimize.transform import NEEDS_ENCODING, Transformer
from cdn_core.store import CacheStore, PurgeSelector, StoredResponse

log = logging.getLogger("cdn.node")

HOST_CACHE_SIZE = 4096  # validated Host values remembered
CONDITIONAL_FIELDS = frozenset(
    {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"}
)
# RFC 9110 9.2.1. Every other method, known or not, is unsafe for invalidation (RFC 9111 4.4).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Reasons a response was not stored that hold for every request of the key (hit-for-miss).
KEY_WIDE_REASONS = frozenset({"no-store", "private", "vary-star", "no-freshness", "set-cookie"})


class CachingProxy:
    """Callable handler for :class:`HttpServerProtocol` (see module docstring)."""

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
        self._inflight: dict[str, asyncio.Future[FillResult]] = {}
        self._hit_for_miss: dict[str, float] = {}
        self._revalidating: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Host values already validated (a handful in practice: the sites served).
        self._valid_hosts: set[str | None] = set()
        self._hits = metrics.by_status["hit"]
        self._hit_bytes = metrics.body_bytes["hit"]
        # Policy hooks a tier installs (edge rate limiting, ...): each sees the request
        # first and returns True to let it through, or answers it itself and returns False.
        self.gates: list[Callable[[Request, HttpServerProtocol], bool]] = []

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
    def __call__(self, req: Request, conn: HttpServerProtocol) -> None:
        if self.access_log.sample:  # off: this one test (cdn_core.node.accesslog)
            conn = self.access_log.wrap(req, conn)
        try:
            self._handle(req, conn)
        except Exception:  # the one catch-all of the synchronous path
            log.exception("error handling %s %s", req.method, req.target)
            self._fail(conn, 500, "Internal Server Error", "internal error")

    def _fail(self, conn: HttpServerProtocol, status: int, reason: str, msg: str) -> None:
        conn.write(simple_response(status, reason, msg, close=True))
        conn.finish(False)

    def _handle(self, req: Request, conn: HttpServerProtocol) -> None:
        for gate in self.gates:
            if not gate(req, conn):
                return
        host = req.fields.get("host")
        if host not in self._valid_hosts:
            if not host or "," in host or not valid_host(host):
                # RFC 9112 3.2: a request without exactly one valid Host gets 400.
                self._fail(conn, 400, "Bad Request", "missing, repeated or invalid Host header")
                return
            if len(self._valid_hosts) >= HOST_CACHE_SIZE:
                self._valid_hosts.clear()
            self._valid_hosts.add(host)
        assert host is not None  # checked above (or found among checked hosts)
        if req.method == "CONNECT":
            self._fail(conn, 405, "Method Not Allowed", "CONNECT is not supported")
            return
        target = req.target
        if not target.startswith("/"):
            try:
                # RFC 9112 3.2.2: an absolute-form target's authority is the host.
                host, target = split_absolute(target)
            except ValueError:
                self._fail(conn, 400, "Bad Request", "request target must be origin-form")
                return
            req.fields["host"] = host
            req.headers = [(n, host if n.lower() == "host" else v) for n, v in req.headers]
        target = normalize_target(target)
        if self.transformer is not None:
            # A signed resize shares the stored original (the variant is the transformer's).
            target = self.transformer.source_target(target)
        key = cache_key(req.scheme, host, target)
        if req.method not in ("GET", "HEAD"):
            self.spawn(self._guard(conn, self._pass(req, conn, key, target)))
            return
        entry = self.store.lookup(key, req.fields)
        fields = req.fields
        if entry is not None and "cache-control" not in fields and "pragma" not in fields:
            # The hot path: no request directives, so a fresh entry is a hit; the same
            # verdict decide() gives (RFC 9111 4.2), without building one.
            now = self.clock.time()
            fr = entry.freshness
            if now < fr.fresh_until and not entry.cc.no_cache:
                self._hits.inc()
                self._hit_bytes.inc(len(entry.body))
                age = max(0.0, fr.corrected_initial_age + now - fr.response_time)
                self._deliver(req, conn, entry, age, b"hit; ttl=%d" % (fr.fresh_until - now))
                return
        req_cc = parse_cache_control(fields.get("cache-control"))
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
                self.metrics.by_status["hit"].inc()
                self.metrics.body_bytes["hit"].inc(len(entry.body))
                self._deliver(req, conn, entry, d.age, b"hit; ttl=%d" % int(d.ttl))
                return
            if d.action is not Action.REVALIDATE:
                self.metrics.by_status["stale"].inc()
                self.metrics.body_bytes["stale"].inc(len(entry.body))
                self.metrics.stale_served.inc()
                if d.action is Action.STALE_OK:
                    self._deliver(req, conn, entry, d.age, b"hit; detail=stale")
                    return
                self._deliver(req, conn, entry, d.age, b"hit; detail=stale-while-revalidate")
                if key not in self._revalidating:
                    self._revalidating.add(key)
                    self.spawn(self._background_revalidate(key, req, target, entry))
                return
            if req_cc.only_if_cached:
                # RFC 9111 5.2.1.7: what is stored needs the origin, which the client forbade.
                self._fail(conn, 504, "Gateway Timeout", "only-if-cached and not usable")
                return
            if d.ttl <= 0 and self.upstream.all_down() and self._stale_on_error(
                entry, req, self.clock.time()
            ):
                # Serve-stale mode: every upstream failed moments ago, so answer from the
                # stored copy at once instead of sending each request to a dead origin;
                # the pool retries the upstream after retry_after seconds (one request
                # per tier then, not one per client).
                self.metrics.by_status["stale"].inc()
                self.metrics.stale_served.inc()
                self._deliver(req, conn, entry, d.age, b"hit; fwd=stale; detail=upstream-down")
                return
            fwd = "request" if d.ttl > 0 else "stale"
        elif req_cc.only_if_cached:
            # RFC 9111 5.2.1.7: nothing stored that satisfies the request.
            self._fail(conn, 504, "Gateway Timeout", "only-if-cached and not in cache")
            return
        elif self.store.variants(key):
            fwd = "vary-miss"
        self.spawn(self._guard(conn, self._miss(req, conn, key, target, entry, fwd)))

    async def _guard(self, conn: HttpServerProtocol, coro: Coroutine[Any, Any, None]) -> None:
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
        conn: HttpServerProtocol,
        key: str,
        target: str,
        stale: StoredResponse | None,
        fwd: str,
    ) -> None:
        result = await self._collapsed(key, req, target, stale, fwd)
        meta = result.meta
        if result.stale:
            status = "stale"
            self.metrics.stale_served.inc()
        elif meta.status >= 500:
            status = "error"
        else:
            status = "revalidated" if "fwd-status=304" in result.cache_status else "miss"
        self.metrics.by_status[status].inc()
        age = meta.freshness.age(self.clock.time())
        cs = result.cache_status.encode()
        fill = result.fill
        t = self.transformer
        if fill is not None and t is not None and t.needs_body(meta, req):
            # A variant is made from the whole body: wait for it, then answer as a hit does.
            await fill.wait_done()
            if fill.entry is not None:
                meta, fill = fill.entry, None
        if result.stream is not None:
            await self.writer.send_stream(req, conn, meta, result.stream, age, cs)
        elif fill is not None:
            await self.writer.send_fill(req, conn, fill, age, cs)
        else:
            self._deliver(req, conn, meta, age, cs)
        self.metrics.body_bytes[status].inc(fill.size if fill is not None else len(meta.body))

    def _deliver(
        self,
        req: Request,
        conn: HttpServerProtocol,
        entry: StoredResponse,
        age: float,
        cache_status: bytes,
    ) -> None:
        """Send a complete response, or the optimised variant the transformer chooses for
        this client (made off the event loop when it does not exist yet)."""
        t = self.transformer
        if t is not None:
            kind = entry.opt_kind
            if kind is None:
                kind = entry.opt_kind = t.kind(entry)
            if kind == "fixed" and "q=0" not in req.fields.get("accept-encoding", ""):
                # Nothing to make for this type, and the client accepts identity.
                self.writer.send_entry(req, conn, entry, age, cache_status)
                return
            choice = t.lookup(entry, req)
            if choice is NEEDS_ENCODING:
                self.spawn(
                    self._guard(conn, self._deliver_made(req, conn, entry, age, cache_status))
                )
                return
            if choice is not None:
                entry = choice
        self.writer.send_entry(req, conn, entry, age, cache_status)

    async def _deliver_made(
        self,
        req: Request,
        conn: HttpServerProtocol,
        entry: StoredResponse,
        age: float,
        cache_status: bytes,
    ) -> None:
        assert self.transformer is not None
        made = await self.transformer.make(entry, req)
        self.writer.send_entry(req, conn, made or entry, age, cache_status)

    async def _background_revalidate(
        self, key: str, req: Request, target: str, stale: StoredResponse
    ) -> None:
        try:
            result = await self._collapsed(key, req, target, stale, "stale")
            await result.complete()
        finally:
            self._revalidating.discard(key)

    async def prewarm(self, url: str) -> str:
        """Fetch ``url`` through this tier (collapsed with client misses) and store it if
        RFC 9111 allows; a fresh stored copy is left alone. Returns the Cache-Status
        parameters of the outcome (``hit``, ``fwd=uri-miss; fwd-status=200; stored``...).

        Raises:
            ValueError: ``url`` is not an absolute http(s) URL.
        """
        key = key_from_url(url)
        host = url.split("://", 1)[1].split("/", 1)[0]
        target = "/" + key.split("://", 1)[1].partition("/")[2]
        req = Request(
            "GET", target, [("Host", host)], {"host": host}, "1.1", True, b"", "127.0.0.1"
        )
        stale = self.store.lookup(key, req.fields)
        if stale is not None and stale.freshness.age(self.clock.time()) < (
            stale.freshness.freshness_lifetime
        ):
            return "hit"
        result = await self._collapsed(key, req, target, stale, "stale" if stale else "uri-miss")
        await result.complete()
        return result.cache_status

    async def _collapsed(
        self, key: str, req: Request, target: str, stale: StoredResponse | None, fwd: str
    ) -> FillResult:
        """One upstream fetch per key at a time; waiters share its result when they may."""
        until = self._hit_for_miss.get(key)
        if until is not None:
            if until > self.clock.monotonic():
                return await self._fill(key, req, target, stale, "bypass")
            del self._hit_for_miss[key]
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._inflight[key] = fut
            # The fetch is its own task, so a leader that disconnects does not cancel it.
            self.spawn(self._lead(key, req, target, stale, fwd, fut))
            return await asyncio.shield(fut)
        self.metrics.collapsed.inc()
        result = await asyncio.shield(fut)
        m = result.meta
        if result.shareable and (
            not m.vary_names or secondary_key(m.vary_names, req.fields) == m.vary_key
        ):
            return FillResult(
                result.cache_status + "; collapsed", True, m, fill=result.fill, stale=result.stale
            )
        return await self._fill(key, req, target, self.store.lookup(key, req.fields), fwd)

    async def _lead(
        self,
        key: str,
        req: Request,
        target: str,
        stale: StoredResponse | None,
        fwd: str,
        fut: asyncio.Future[FillResult],
    ) -> None:
        try:
            result = await self._fill(key, req, target, stale, fwd)
            fut.set_result(result)
            if result.fill is not None and result.shareable:
                # Requests arriving while the body streams in join this fill.
                await result.fill.wait_done()
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._inflight.get(key) is fut:
                del self._inflight[key]

    def _upstream_headers(
        self, req: Request, stale: StoredResponse | None, *, keep_conditionals: bool = False
    ) -> list[tuple[str, str]]:
        drop = HOP_BY_HOP | connection_named(req.fields) | {"x-forwarded-for", "via"}
        if not keep_conditionals:
            # The cache fills with the full representation and answers the client's
            # conditions and ranges itself.
            drop = drop | CONDITIONAL_FIELDS
        headers = [(n, v) for n, v in req.headers if n.lower() not in drop]
        via = req.fields.get("via")
        headers.append(("Via", f"{via}, {self.via}" if via else self.via))
        if self.config.tier == "edge":
            # Client claims were stripped on arrival (sanitize.strip_untrusted); state
            # what this edge saw instead.
            headers.extend(forwarded_fields(req.client, req.fields.get("host", ""), req.scheme))
        else:
            xff = req.fields.get("x-forwarded-for")
            headers.append(("X-Forwarded-For", f"{xff}, {req.client}" if xff else req.client))
        if stale is not None:
            if stale.etag:
                headers.append(("If-None-Match", stale.etag))
            if stale.last_modified:
                headers.append(("If-Modified-Since", stale.last_modified))
        return headers

    def _error_entry(
        self, key: str, req: Request, status: int, reason: str, msg: str, now: float
    ) -> StoredResponse:
        return build_entry(
            key=key,
            host="",
            req=req,
            status=status,
            reason=reason,
            headers=[("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
            body=(msg + "\n").encode(),
            request_time=now,
            response_time=now,
            settings=self.config.cache,
            via=self.via,
        )

    def _stale_on_error(self, stale: StoredResponse | None, req: Request, now: float) -> bool:
        return stale is not None and may_serve_stale_on_error(
            stale.freshness,
            stale.cc,
            parse_cache_control(req.fields.get("cache-control")),
            now,
            failover_window=self.config.failover_window,
        )

    async def _fill(
        self, key: str, req: Request, target: str, stale: StoredResponse | None, fwd: str
    ) -> FillResult:
        """Fetch ``key`` upstream (conditionally when ``stale`` has validators) and return
        as soon as the response head arrives; the body is received by a task of its own
        and stored when complete, if RFC 9111 3 allows. Never raises for upstream
        failures: they become stale responses (RFC 5861 4) or 502/504."""
        request_time = self.clock.time()
        started = self.clock.monotonic()
        try:
            stream = await self.upstream.open(
                key, "GET", target, self._upstream_headers(req, stale)
            )
        except UpstreamError as exc:
            self.metrics.upstream_errors.inc()
            self.metrics.upstream_seconds.observe(self.clock.monotonic() - started)
            now = self.clock.time()
            if self._stale_on_error(stale, req, now):
                assert stale is not None
                return FillResult("hit; fwd=stale; detail=stale-if-error", True, stale, stale=True)
            log.warning("upstream failed for %s: %s", key, exc)
            timeout = isinstance(exc, UpstreamTimeout)
            status, reason = (504, "Gateway Timeout") if timeout else (502, "Bad Gateway")
            entry = self._error_entry(key, req, status, reason, "upstream unavailable", now)
            detail = "timeout" if timeout else "connect"
            return FillResult(f"fwd={fwd}; detail={detail}", True, entry)
        response_time = self.clock.time()
        if stream.status == 304 and stale is not None:
            stream.close()
            if not selects_stored(
                stored_etag=stale.etag,
                stored_last_modified=stale.last_modified,
                etag=_first(stream.headers, "etag"),
                last_modified=_first(stream.headers, "last-modified"),
            ):
                # RFC 9111 4.3.4: a 304 for another representation updates nothing; fetch
                # the full response rather than serve the stored one as if validated.
                log.warning("304 for %s names other validators; refetching", key)
                return await self._fill(key, req, target, None, fwd)
            fresh = refresh_from_304(
                stale,
                stream.headers,
                request_time=request_time,
                response_time=response_time,
                settings=self.config.cache,
                via=self.via,
            )
            self.store.put(fresh)
            return FillResult(f"fwd={fwd}; fwd-status=304; stored", True, fresh)
        if stream.status >= 500 and self._stale_on_error(stale, req, response_time):
            assert stale is not None
            stream.close()
            # RFC 5861 4: the stored response answers; the error never replaces it.
            return FillResult(
                f"hit; fwd=stale; fwd-status={stream.status}; detail=stale-if-error",
                True,
                stale,
                stale=True,
            )
        meta = build_entry(
            key=key,
            host=normalize_host(req.fields.get("host", "")),
            req=req,
            status=stream.status,
            reason=stream.reason,
            headers=stream.headers,
            body=b"",
            request_time=request_time,
            response_time=response_time,
            settings=self.config.cache,
            via=self.via,
        )
        ok, why = storable(
            method="GET",
            status=stream.status,
            request_fields=req.fields,
            request_cc=parse_cache_control(req.fields.get("cache-control")),
            response_fields=meta.fields,
            response_cc=meta.cc,
            share_set_cookie=self.config.cache.share_set_cookie,
        )
        if not ok and why in KEY_WIDE_REASONS:
            self._hit_for_miss[key] = (
                self.clock.monotonic() + self.config.cache.hit_for_miss_seconds
            )
        useless = meta.freshness.freshness_lifetime <= 0 and not (meta.etag or meta.last_modified)
        keep = ok and not useless
        probes = reflection_probes(req.fields, meta.vary_names) if keep else []
        if probes and reflected(probes, meta.headers):
            log.warning("not storing %s: a response header reflects an unkeyed request field", key)
            keep = False
        cs = f"fwd={fwd}; fwd-status={stream.status}"
        length = stream.content_length
        if length is not None and length > self.config.cache.max_object_bytes:
            # Too large to keep: stream it straight to this one client.
            return FillResult(cs, False, meta, stream=stream)
        fill = Fill(meta, length)
        self.spawn(self._receive(stream, fill, keep, started, probes))
        # Errors are shared with waiters too, so that they do not all retry at once.
        return FillResult(
            cs + ("; stored" if keep else ""), ok or stream.status >= 500, meta, fill=fill
        )

    async def _receive(
        self,
        stream: UpstreamStream,
        fill: Fill,
        keep: bool,
        started: float,
        probes: list[bytes],
    ) -> None:
        """Read an upstream body into ``fill``; store the complete response if ``keep``
        and the body reflects none of ``probes`` (unkeyed request values, see
        :func:`~cdn_core.node.sanitize.reflection_probes`). A body cut short is never
        stored (RFC 9111 3.3)."""
        try:
            async for chunk in stream.chunks():
                fill.append(chunk)
        except UpstreamError as exc:
            self.metrics.upstream_errors.inc()
            log.warning("upstream body failed for %s: %s", fill.meta.key, exc)
            fill.fail()
            return
        except BaseException:
            fill.fail()
            raise
        finally:
            stream.close()
            self.metrics.upstream_seconds.observe(self.clock.monotonic() - started)
        self.metrics.upstream_bytes.inc(fill.size)
        meta = fill.meta
        meta.body = b"".join(fill.chunks)
        meta.head = serialize_head(meta.status, meta.reason, meta.headers, len(meta.body), self.via)
        if keep and probes and reflected(probes, [], meta.body):
            log.warning("not storing %s: the body reflects an unkeyed request field", meta.key)
            keep = False
        if keep:
            self.store.put(meta)
        fill.finish(meta)

    async def _pass(self, req: Request, conn: HttpServerProtocol, key: str, target: str) -> None:
        """Forward a request the cache does not answer (unsafe or unknown methods); after
        a non-error response to an unsafe method, invalidate the target URI and the
        same-host ``Location``/``Content-Location`` (RFC 9111 4.4)."""
        now = self.clock.time()
        try:
            up = await self.upstream.fetch(
                key,
                req.method,
                target,
                self._upstream_headers(req, None, keep_conditionals=True),
                body=req.body or None,
            )
        except UpstreamError as exc:
            self.metrics.upstream_errors.inc()
            log.warning("upstream failed for %s %s: %s", req.method, key, exc)
            self.metrics.by_status["error"].inc()
            entry = self._error_entry(key, req, 502, "Bad Gateway", "upstream unavailable", now)
            self.writer.send_entry(req, conn, entry, 0, b"fwd=method")
            return
        if req.method not in SAFE_METHODS and up.status < 400:
            self._invalidate(key, req, up.headers)
        entry = build_entry(
            key=key,
            host="",
            req=req,
            status=up.status,
            reason=up.reason,
            headers=up.headers,
            body=up.body,
            request_time=now,
            response_time=self.clock.time(),
            settings=self.config.cache,
            via=self.via,
        )
        self.metrics.by_status["pass"].inc()
        self.metrics.body_bytes["pass"].inc(len(up.body))
        self.writer.send_entry(
            req,
            conn,
            entry,
            entry.freshness.age(self.clock.time()),
            b"fwd=method; fwd-status=%d" % up.status,
        )

    def _invalidate(self, key: str, req: Request, headers: list[tuple[str, str]]) -> None:
        """Purge ``key`` and the URIs in ``Location``/``Content-Location`` (absolute or
        relative to the request's URI) that have the same host (RFC 9111 4.4)."""
        now = self.clock.time()
        keys = {key}
        fields = combine(headers)
        base = key.split("://", 1)[0] + "://" + normalize_host(req.fields.get("host", ""))
        for name in ("location", "content-location"):
            value = fields.get(name)
            if not value:
                continue
            try:
                other = key_from_url(urljoin(key, value.strip()))
            except ValueError:
                continue
            if other.startswith(base + "/"):
                keys.add(other)
        for k in keys:
            self.store.purge(PurgeSelector("url", k), now)


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v
    return None
