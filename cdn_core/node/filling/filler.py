"""Misses and revalidations: the upstream fetch of one key, its head shared at once and
its body streamed to every waiting request while it is stored (RFC 9111 3, 4.3), stale
answers when the upstream fails (RFC 5861 4). Fetches are collapsed per key by
:mod:`cdn_core.node.filling.collapsing`, which also remembers the keys found uncacheable
here (hit-for-miss)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from cdn_core.clock import Clock
from cdn_core.errors import UpstreamError, UpstreamTimeout
from cdn_core.heads import HOP_BY_HOP, connection_named, serialize_head
from cdn_core.http_cache.cache_control import CacheControl, parse_cache_control
from cdn_core.http_cache.conditional import selects_stored
from cdn_core.http_cache.decision import Action, decide, may_serve_stale_on_error
from cdn_core.http_cache.storability import storable
from cdn_core.http_cache.vary import vary_fields
from cdn_core.node.exchange.entries import build_entry, refresh_from_304
from cdn_core.node.exchange.keys import normalize_host
from cdn_core.node.exchange.request import Request
from cdn_core.node.exchange.sanitize import (
    forwarded_fields,
    reflected,
    reflection_probes,
    unprobed_cookie,
)
from cdn_core.node.filling.collapsing import Collapsing
from cdn_core.node.filling.fill import Fill, FillResult
from cdn_core.node.filling.upstream import UpstreamPool, UpstreamStream
from cdn_core.node.observe.metrics import NodeMetrics
from cdn_core.node.settings.node import NodeConfig
from cdn_core.services.cache_rules import apply_cache_rule
from cdn_core.store import CacheStore, StoredResponse

log = logging.getLogger("cdn.node")

NO_DIRECTIVES = parse_cache_control(None)

CONDITIONAL_FIELDS = frozenset(
    {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"}
)
# Reasons a response was not stored that hold for every request of the key (hit-for-miss).
KEY_WIDE_REASONS = frozenset({"no-store", "private", "vary-star", "no-freshness", "set-cookie"})


class UpstreamFiller:
    """Fetches from the upstream pool on behalf of a :class:`CachingProxy` (module
    docstring); ``spawn`` runs a coroutine as a task the proxy owns."""

    def __init__(
        self,
        config: NodeConfig,
        store: CacheStore,
        upstream: UpstreamPool,
        clock: Clock,
        metrics: NodeMetrics,
        via: str,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.config = config
        self.store = store
        self.upstream = upstream
        self.clock = clock
        self.metrics = metrics
        self.via = via
        self.spawn = spawn
        self.collapsing = Collapsing(self._fill, store, clock, metrics, spawn)
        # Ports a client may name in Host (the listeners', and the defaults a load balancer
        # in front uses): the key leaves the port out, so another one is not forwarded
        # (upstream_headers). The node adds its bound ports when it starts (port 0 in the
        # config: any free port).
        self.own_ports = {80, 443, config.port}
        self.own_ports.update(p for p in (config.tls.port, config.tls.h2c_port) if p)
        # Which pool a request's fetch goes to (a mid tier running services replaces it:
        # cdn_core.node.policy.services).
        self.upstream_for: Callable[[Request], UpstreamPool] = lambda req: self.upstream
        # The entry point of every miss and revalidation (collapsed per key).
        self.collapsed = self.collapsing.collapsed

    def upstream_headers(
        self, req: Request, stale: StoredResponse | None, *, keep_conditionals: bool = False
    ) -> list[tuple[str, str]]:
        # Expect: this node answered it and holds the whole body (RFC 9110 10.1.1).
        drop = HOP_BY_HOP | connection_named(req.fields) | {"x-forwarded-for", "via", "expect"}
        if not keep_conditionals:
            # The cache fills with the full representation and answers the client's
            # conditions and ranges itself.
            drop = drop | CONDITIONAL_FIELDS
        headers = [(n, v) for n, v in req.headers if n.lower() not in drop]
        client_host = req.fields.get("host", "")
        if not req.forwarded and self._foreign_port(client_host):
            # The key has no port: a port no listener of ours has ("Host: h:1337") would
            # reach the origin for one client and its Location for everyone. The origin
            # gets the host alone (a trusted forwarder's edge has done this already).
            client_host = client_host.rpartition(":")[0]
            headers = [(n, client_host if n.lower() == "host" else v) for n, v in headers]
        if req.service is not None and self.config.tier == "mid":
            # The Host the service's origin expects (nginx proxy_set_header Host).
            host = req.service.spec.origins.servers[0].host_header
            if host is not None:
                headers = [(n, v) for n, v in headers if n.lower() != "host"]
                headers.append(("Host", host))
        via = req.fields.get("via")
        headers.append(("Via", f"{via}, {self.via}" if via else self.via))
        if req.forwarded:
            # A trusted forwarder's claims were kept (sanitize.ForwardedTrust): add this hop.
            xff = req.fields.get("x-forwarded-for")
            headers.append(("X-Forwarded-For", f"{xff}, {req.client}" if xff else req.client))
        else:
            # Client claims were stripped on arrival; state what this node saw instead.
            headers.extend(forwarded_fields(req.client, client_host, req.scheme))
        if stale is not None:
            if stale.etag:
                headers.append(("If-None-Match", stale.etag))
            if stale.last_modified:
                headers.append(("If-Modified-Since", stale.last_modified))
        return headers

    def error_entry(
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

    def stale_on_error(self, stale: StoredResponse | None, req: Request, now: float) -> bool:
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
        purges = self.store.purges
        try:
            stream = await self.upstream_for(req).open(
                key, "GET", target, self.upstream_headers(req, stale), on_interim=req.interim
            )
        except UpstreamError as exc:
            self.metrics.upstream_errors.inc()
            self.metrics.upstream_seconds.observe(self.clock.monotonic() - started)
            now = self.clock.time()
            if self.stale_on_error(stale, req, now):
                assert stale is not None
                return FillResult("hit; fwd=stale; detail=stale-if-error", True, stale, stale=True)
            log.warning("upstream failed for %s: %s", key, exc)
            timeout = isinstance(exc, UpstreamTimeout)
            status, reason = (504, "Gateway Timeout") if timeout else (502, "Bad Gateway")
            entry = self.error_entry(key, req, status, reason, "upstream unavailable", now)
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
            return self._refreshed(key, req, stale, stream.headers, request_time,
                                   response_time, f"fwd={fwd}; fwd-status=304", purges)
        if stream.status >= 500 and self.stale_on_error(stale, req, response_time):
            assert stale is not None
            stream.close()
            # RFC 5861 4: the stored response answers; the error never replaces it.
            return FillResult(
                f"hit; fwd=stale; fwd-status={stream.status}; detail=stale-if-error",
                True,
                stale,
                stale=True,
            )
        headers = stream.headers
        if req.service is not None:
            rule = req.service.cache_rule("GET", req.service_path, stream.status)
            if rule is not None:
                headers = apply_cache_rule(rule, headers, self.config.cache.targeted_fields)
        meta = build_entry(
            key=key,
            host=normalize_host(req.fields.get("host", "")),
            req=req,
            status=stream.status,
            reason=stream.reason,
            headers=headers,
            body=b"",
            request_time=request_time,
            response_time=response_time,
            settings=self.config.cache,
            via=self.via,
        )
        ok, why = self._storable(req, meta)
        useless = meta.freshness.freshness_lifetime <= 0 and not (meta.etag or meta.last_modified)
        if (not ok and _key_wide(why, meta.cc)) or (ok and useless):
            # Nothing later requests could share: let them go upstream in parallel rather
            # than wait on one fetch and then make their own.
            self.collapsing.hit_for_miss(key, self.config.cache.hit_for_miss_seconds)
        keep = ok and not useless
        # Collapsed requests get only what the store could answer them with: a response
        # kept and fresh on arrival (RFC 9111 4: reuse needs a fresh or validated response,
        # and no-cache or max-age=0 ask for validation). Upstream errors are shared too, so
        # that waiters do not all retry at once (case H03), but not one that may be this
        # client's own: its request carried credentials, or it sets a cookie.
        reusable = keep and _fresh_on_arrival(meta, response_time)
        error_shared = (
            stream.status >= 500
            and not _personal_exchange(req, headers)
            and not (meta.cc.private or meta.cc.no_store)
        )
        shareable = reusable or error_shared
        probes = self._probes(req, meta.vary_names) if keep or error_shared else []
        if keep and self._personal(key, req, meta, probes):
            keep = shareable = False
            probes = []
        elif error_shared and probes and reflected(probes, meta.headers):
            shareable = False
            probes = []
        cs = f"fwd={fwd}; fwd-status={stream.status}"
        length = stream.content_length
        if length is not None and length > self.config.cache.max_object_bytes:
            # Too large to keep: stream it straight to this one client.
            return FillResult(cs, False, meta, stream=stream)
        fill = Fill(meta, length)
        # With probes, whether it is stored waits on the body (fill.decided).
        fill.stored = None if probes else keep
        self.spawn(self._receive(stream, fill, keep, started, probes, purges))
        return FillResult(cs + ("; stored" if fill.stored else ""), shareable, meta, fill=fill)

    def _refreshed(
        self,
        key: str,
        req: Request,
        stale: StoredResponse,
        headers: list[tuple[str, str]],
        request_time: float,
        response_time: float,
        cs: str,
        purges: int,
    ) -> FillResult:
        """The stored response updated by a 304 with ``headers`` (RFC 9111 4.3.4), stored
        again only when the updated response may be: the 304's fields go through the same
        storage checks as a full response's (3, 5.2.2.5 no-store, 5.2.2.7 private, 3.5,
        reflected request values), and a changed Vary keeps it out (4.1: the stored
        secondary key no longer applies). A ``Set-Cookie`` in the 304 is this client's:
        it gets it, the stored response is refreshed without it. When the 304 makes the
        response unfit for sharing (no-store, private, Vary changed), the stored one goes.
        Nothing is stored when a purge was applied since the request went out (``purges``
        is the store's count then): the purge reported done and must stay done."""

        def refresh(lines: list[tuple[str, str]]) -> StoredResponse:
            return refresh_from_304(stale, lines, request_time=request_time,
                                    response_time=response_time, settings=self.config.cache,
                                    via=self.via)

        fresh = shared = refresh(headers)
        why = self._unfit_refresh(key, req, stale, shared)
        if why == "set-cookie":
            shared = refresh([(n, v) for n, v in headers if n.lower() != "set-cookie"])
            why = self._unfit_refresh(key, req, stale, shared)
        if why is None and self.store.purges != purges:
            return FillResult(cs, False, fresh)
        if why is None:
            self.store.put(shared)
            # Waiters share it on the terms of a full fill: no cookie of this client's,
            # and fresh on arrival (a no-cache or max-age=0 response is validated per
            # request, RFC 9111 5.2.2.4).
            reusable = shared is fresh and _fresh_on_arrival(shared, response_time)
            return FillResult(cs + "; stored", reusable, fresh)
        if _key_wide(why, shared.cc) or why == "vary-changed":
            self.store.remove(stale)
        return FillResult(cs, False, fresh)

    def _storable(self, req: Request, response: StoredResponse) -> tuple[bool, str]:
        """RFC 9111 3 for a GET ``req`` and the (head of the) ``response``: (ok, reason)."""
        return storable(
            method="GET",
            status=response.status,
            request_fields=req.fields,
            request_cc=parse_cache_control(req.fields.get("cache-control")),
            response_fields=response.fields,
            response_cc=response.cc,
            share_set_cookie=self.config.cache.share_set_cookie,
        )

    def _unfit_refresh(
        self, key: str, req: Request, stale: StoredResponse, fresh: StoredResponse
    ) -> str | None:
        """Why the 304-refreshed ``fresh`` may not replace ``stale`` in the store, or None."""
        ok, why = self._storable(req, fresh)
        if not ok:
            return why
        if (vary_fields(fresh.fields.get("vary")) or ()) != stale.vary_names:
            return "vary-changed"
        if self._personal(key, req, fresh, self._probes(req, stale.vary_names)):
            return "personal"
        return None

    def _probes(self, req: Request, keyed: tuple[str, ...]) -> list[bytes]:
        """The request values a stored response must not reflect: unkeyed field lines and
        the query parameters the service's cache key leaves out."""
        unkeyed = (
            req.service.key.unkeyed(req.target.partition("?")[2])
            if req.service is not None else []
        )
        return reflection_probes(req.headers, keyed, unkeyed)

    def _foreign_port(self, host: str) -> bool:
        """Whether ``host`` (a valid Host value) names a port none of our listeners has."""
        _, colon, port = host.rpartition(":")
        return bool(colon) and port.isdigit() and int(port) not in self.own_ports

    def _personal(
        self, key: str, req: Request, meta: StoredResponse, probes: list[bytes]
    ) -> bool:
        """Whether a storable response may be built for this client alone: a header
        reflects one of its unkeyed request values, or its Cookie holds a value too short
        to look for (:func:`~cdn_core.node.exchange.sanitize.unprobed_cookie`)."""
        if (
            "cookie" not in meta.vary_names
            and not self.config.cache.store_with_short_cookies
            and unprobed_cookie(req.headers)
        ):
            log.info("not storing %s: the request's Cookie has a value too short to check", key)
            return True
        if probes and reflected(probes, meta.headers):
            log.warning("not storing %s: a response header reflects an unkeyed request field", key)
            return True
        return False

    async def _receive(
        self,
        stream: UpstreamStream,
        fill: Fill,
        keep: bool,
        started: float,
        probes: list[bytes],
        purges: int,
    ) -> None:
        """Read an upstream body into ``fill``; store the complete response if ``keep``
        and the body reflects none of ``probes`` (unkeyed request values, see
        :func:`~cdn_core.node.exchange.sanitize.reflection_probes`) and no purge was applied
        since the fetch began (``purges``, the store's count then). A body cut short is
        never stored (RFC 9111 3.3)."""
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
        if probes and reflected(probes, [], meta.body):
            if keep:
                log.warning("not storing %s: the body reflects an unkeyed request field",
                            meta.key)
            keep = False
            fill.personal = True  # (an error page too: waiters fetch their own)
        if keep and self.store.purges != purges:
            # A purge was applied while this was in flight and reported done: what was
            # fetched before it may be what it removed.
            log.info("not storing %s: a purge was applied during its fetch", meta.key)
            keep = False
        if keep:
            self.store.put(meta)
        fill.stored = keep
        fill.finish(meta)


def _fresh_on_arrival(response: StoredResponse, now: float) -> bool:
    """Whether ``response`` may be reused without validation the moment it arrives
    (RFC 9111 4.2; no-cache and max-age=0 say it may not): what collapsed requests need."""
    return decide(response.freshness, response.cc, NO_DIRECTIVES, now).action is Action.FRESH


def _key_wide(why: str, cc: CacheControl) -> bool:
    """Whether a reason not to store holds for every request of the key: a response's
    own, not a request's (a request's no-store binds that exchange only and leaves what
    is stored alone, RFC 9111 5.2.1.5)."""
    if why == "no-store":
        return cc.no_store
    return why in KEY_WIDE_REASONS


def _personal_exchange(req: Request, headers: list[tuple[str, str]]) -> bool:
    """Whether a response may carry this client's own state: the request had credentials
    (``Cookie``, ``Authorization``) or the response sets a cookie."""
    return (
        "cookie" in req.fields
        or "authorization" in req.fields
        or any(n.lower() == "set-cookie" for n, _ in headers)
    )


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v
    return None
