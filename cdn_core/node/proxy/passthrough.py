"""Requests the cache does not answer: forwarded upstream as they are, and after a
successful unsafe method the target URI and same-host ``Location``/``Content-Location``
are invalidated (RFC 9111 4.4)."""

from __future__ import annotations

import logging
from urllib.parse import urljoin

from cdn_core.errors import UpstreamError
from cdn_core.heads import combine
from cdn_core.node.exchange.channel import ResponseChannel
from cdn_core.node.exchange.entries import build_entry
from cdn_core.node.exchange.keys import key_from_url, normalize_host
from cdn_core.node.exchange.request import Request
from cdn_core.node.filling.filler import UpstreamFiller
from cdn_core.node.proxy.delivery import ResponseWriter
from cdn_core.store import PurgeSelector

log = logging.getLogger("cdn.node")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class Passthrough:
    def __init__(self, filler: UpstreamFiller, writer: ResponseWriter) -> None:
        self.filler = filler
        self.writer = writer

    async def forward(self, req: Request, conn: ResponseChannel, key: str, target: str) -> None:
        """Forward a request the cache does not answer (unsafe or unknown methods); after
        a non-error response to an unsafe method, invalidate the target URI and the
        same-host ``Location``/``Content-Location`` (RFC 9111 4.4)."""
        now = self.filler.clock.time()
        try:
            up = await self.filler.upstream_for(req).fetch(
                key,
                req.method,
                target,
                self.filler.upstream_headers(req, None, keep_conditionals=True),
                body=req.body or None,
                on_interim=req.interim,
            )
        except UpstreamError as exc:
            self.filler.metrics.upstream_errors.inc()
            log.warning("upstream failed for %s %s: %s", req.method, key, exc)
            self.filler.metrics.counted(req.version)["error"].inc()
            entry = self.filler.error_entry(
                key, req, 502, "Bad Gateway", "upstream unavailable", now
            )
            self.writer.send_entry(req, conn, entry, self.writer.status_lines(0, b"fwd=method"))
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
            response_time=self.filler.clock.time(),
            settings=self.filler.config.cache,
            via=self.filler.via,
        )
        self.filler.metrics.counted(req.version)["pass"].inc()
        self.filler.metrics.body_bytes["pass"].inc(len(up.body))
        lines = self.writer.status_lines(
            entry.freshness.age(self.filler.clock.time()),
            b"fwd=method; fwd-status=%d" % up.status,
        )
        self.writer.send_entry(req, conn, entry, lines)

    def _invalidate(self, key: str, req: Request, headers: list[tuple[str, str]]) -> None:
        """Purge ``key`` and the URIs in ``Location``/``Content-Location`` (absolute or
        relative to the request's URI) that have the same host (RFC 9111 4.4)."""
        now = self.filler.clock.time()
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
            self.filler.store.purge(PurgeSelector("url", k), now)
