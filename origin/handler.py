"""The origin's one request handler: GET and HEAD of files under the root (and of
synthetic objects when ``synthetic`` is set, see :mod:`origin.synthetic`).

Per request: resolve and open the file (in the default executor, since ``stat``/``open``
block), evaluate preconditions (RFC 9110 13.2.2) and Range (RFC 9110 14), then stream
the selected bytes. Every request that reaches the handler is counted and logged once,
whatever its status, because the chain tests count origin requests to prove shielding.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate

from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from cdn_core.clock import Clock
from origin import conditional as cond
from origin import synthetic
from origin.config import OriginConfig
from origin.files import Kind, Target, open_target, read_range, read_small
from origin.mediatypes import content_type
from origin.rules import RuleSet
from origin.stats import OriginStats

access_log = logging.getLogger("cdn.origin.access")
log = logging.getLogger("cdn.origin")

ALLOW = "GET, HEAD"
CHUNK = 256 * 1024  # bytes per read: bounds memory per response for large files
SERVER = "cdn-origin"


def http_date(ts: float) -> str:
    """``ts`` (epoch seconds) as an IMF-fixdate (RFC 9110 5.6.7)."""
    return formatdate(int(ts), usegmt=True)


@dataclass(slots=True)
class _Exchange:
    """What one request produced, for the counters and the access log."""

    method: str
    path: str
    status: int = 500
    body_bytes: int = 0
    counted: bool = False


class OriginHandler:
    """The aiohttp handler (:meth:`handle`). ``root_real`` is the root with symlinks
    resolved; all times come from ``clock`` (``Date`` from ``clock.time()``, durations from
    ``clock.monotonic()``)."""

    def __init__(
        self, config: OriginConfig, *, clock: Clock, stats: OriginStats, rules: RuleSet
    ) -> None:
        self._config = config
        self._root_real = os.path.realpath(config.root)
        self._clock = clock
        self._stats = stats
        self._rules = rules

    @property
    def root(self) -> str:
        """The absolute root directory, symlinks resolved."""
        return self._root_real

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request; never raises except when the client has gone away."""
        started = self._clock.monotonic()
        ex = _Exchange(method=request.method, path=request.path)
        try:
            return await self._serve(request, ex)
        except ConnectionError:
            # The client went away mid-response; aiohttp drops the connection quietly.
            raise
        except Exception:
            log.exception("error serving %s %s", request.method, request.path)
            if ex.counted:
                raise  # the head is already on the wire; aiohttp closes the connection
            return self._reply(request, ex, 500, self._base_headers(), b"internal error\n")
        finally:
            self._commit(ex, ex.status)
            if access_log.isEnabledFor(logging.INFO):
                self._log_access(request, ex, started)

    def _commit(self, ex: _Exchange, status: int) -> None:
        # Count when the status is decided, before any byte is sent: a test that reads
        # /status right after its response arrived must already see this request.
        ex.status = status
        if not ex.counted:
            ex.counted = True
            self._stats.record(method=ex.method, path=ex.path, status=status)

    def _reply(
        self,
        request: web.Request,
        ex: _Exchange,
        status: int,
        headers: dict[str, str],
        body: bytes = b"",
        ctype: str = "text/plain; charset=utf-8",
    ) -> web.Response:
        """A response with a small in-memory body (none for HEAD, 304 and 412/416)."""
        self._commit(ex, status)
        if body:
            headers["Content-Type"] = ctype
            if request.method != "HEAD":
                self._sent(ex, len(body))
        return web.Response(status=status, body=body or None, headers=headers)

    def _sent(self, ex: _Exchange, body_bytes: int) -> None:
        # Counted before the bytes go out, like the status in _commit: a client that has
        # read the whole body must find it in the metrics already.
        ex.body_bytes += body_bytes
        self._stats.add_bytes(body_bytes)

    def _log_access(self, request: web.Request, ex: _Exchange, started: float) -> None:
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock.time())),
            "client": request.remote,
            "method": ex.method,
            "path": ex.path,
            "status": ex.status,
            "bytes": ex.body_bytes,
            "duration_ms": round((self._clock.monotonic() - started) * 1000.0, 3),
        }
        access_log.info(json.dumps(record, separators=(",", ":")))

    def _base_headers(self) -> dict[str, str]:
        return {"Date": http_date(self._clock.time()), "Server": SERVER}

    async def _serve(self, request: web.Request, ex: _Exchange) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            headers = {**self._base_headers(), "Allow": ALLOW}
            return self._reply(request, ex, 405, headers, b"method not allowed\n")
        syn = self._config.synthetic
        if syn is not None:
            found = synthetic.parse(request.path, syn.prefix, syn.max_size)
            if found is not None:
                return await self._send_synthetic(request, ex, *found)
        loop = asyncio.get_running_loop()
        target: Target = await loop.run_in_executor(
            None, open_target, self._root_real, request.path, self._config.index
        )
        if target.kind is Kind.FILE:
            assert target.fobj is not None
            try:
                return await self._send_file(request, target, ex)
            finally:
                target.fobj.close()
        if target.kind is Kind.REDIRECT:
            location = URL.build(path=request.path + "/", query_string=request.query_string)
            headers = {**self._base_headers(), "Location": str(location)}
            return self._reply(request, ex, 301, headers)
        if target.kind is Kind.FORBIDDEN:
            return self._reply(request, ex, 403, self._base_headers(), b"forbidden\n")
        return await self._not_found(request, ex)

    async def _not_found(self, request: web.Request, ex: _Exchange) -> web.Response:
        headers = self._base_headers()
        if self._config.not_found_cache_control:
            headers["Cache-Control"] = self._config.not_found_cache_control
        name = self._config.not_found_page
        page = None
        if name:
            loop = asyncio.get_running_loop()
            page = await loop.run_in_executor(None, read_small, self._root_real, name)
        if name and page is not None:
            return self._reply(request, ex, 404, headers, page, content_type(name))
        return self._reply(request, ex, 404, headers, b"not found\n")

    async def _send_file(
        self, request: web.Request, target: Target, ex: _Exchange
    ) -> web.StreamResponse:
        assert target.st is not None and target.fobj is not None
        st = target.st
        now = int(self._clock.time())
        # Validators describe the fstat of the open file, so they match the bytes sent.
        etag = cond.EntityTag(f'"{st.st_mtime_ns:x}-{st.st_size:x}"')
        # Last-Modified must not be later than Date (RFC 9110 8.8.2.1).
        last_modified = min(st.st_mtime_ns // 1_000_000_000, now)
        policy = self._rules.lookup(target.relpath)
        headers = self._base_headers()
        if policy.cache_control:
            headers["Cache-Control"] = policy.cache_control
        if policy.surrogate_key:
            headers["Surrogate-Key"] = policy.surrogate_key

        async def body(resp: web.StreamResponse, offset: int, count: int) -> None:
            await self._write_body(resp, target, offset, count, ex)

        return await self._send_entity(request, ex, headers, etag, last_modified, st.st_size,
                                       content_type(target.relpath), body)

    async def _send_synthetic(
        self, request: web.Request, ex: _Exchange, oid: str, size: int
    ) -> web.StreamResponse:
        """A synthetic object (origin/synthetic.py): the same validators, preconditions
        and ranges as a file, its bytes made as they are sent."""
        syn = self._config.synthetic
        assert syn is not None
        headers = {**self._base_headers(), "Cache-Control": syn.cache_control}

        async def body(resp: web.StreamResponse, offset: int, count: int) -> None:
            for piece in synthetic.slices(oid, offset, count, CHUNK):
                self._sent(ex, len(piece))
                await resp.write(piece)

        return await self._send_entity(request, ex, headers,
                                       cond.EntityTag(synthetic.etag(oid, size)), 0, size,
                                       "application/octet-stream", body)

    async def _send_entity(
        self,
        request: web.Request,
        ex: _Exchange,
        headers: dict[str, str],
        etag: cond.EntityTag,
        last_modified: int,
        size: int,
        ctype: str,
        body: Callable[[web.StreamResponse, int, int], Awaitable[None]],
    ) -> web.StreamResponse:
        """Answer a representation of ``size`` bytes: preconditions (RFC 9110 13.2.2),
        then Range (RFC 9110 14); ``body(resp, offset, count)`` writes the bytes."""
        now = int(self._clock.time())
        headers["ETag"] = etag.opaque
        headers["Last-Modified"] = http_date(last_modified)
        h = request.headers
        outcome = cond.evaluate_preconditions(
            method=request.method,
            etag=etag,
            last_modified=last_modified,
            if_match=_joined(h, "If-Match"),
            if_none_match=_joined(h, "If-None-Match"),
            if_modified_since=h.get("If-Modified-Since"),
            if_unmodified_since=h.get("If-Unmodified-Since"),
        )
        if outcome is cond.Outcome.NOT_MODIFIED:
            return self._reply(request, ex, 304, headers)
        if outcome is cond.Outcome.PRECONDITION_FAILED:
            return self._reply(request, ex, 412, headers)

        offset, count, status = 0, size, 200
        headers["Content-Type"] = ctype
        headers["Accept-Ranges"] = "bytes"
        # Range is defined for GET only; a server MUST ignore it otherwise (RFC 9110 14.2).
        if request.method == "GET" and cond.if_range_allows(
            h.get("If-Range"), etag=etag, last_modified=last_modified, now=now
        ):
            rng = cond.parse_range(h.get("Range"), size)
            if isinstance(rng, cond.Unsatisfiable):
                headers["Content-Range"] = f"bytes */{size}"
                return self._reply(request, ex, 416, headers)
            if rng is not None:
                offset, count, status = rng.first, rng.size, 206
                headers["Content-Range"] = rng.content_range()

        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = count
        self._commit(ex, status)
        await resp.prepare(request)
        if request.method == "GET":
            await body(resp, offset, count)
        await resp.write_eof()
        return resp

    async def _write_body(
        self, resp: web.StreamResponse, target: Target, offset: int, count: int, ex: _Exchange
    ) -> None:
        assert target.fobj is not None
        loop = asyncio.get_running_loop()
        remaining = count
        while remaining > 0:
            chunk = await loop.run_in_executor(
                None, read_range, target.fobj, offset, min(CHUNK, remaining)
            )
            if not chunk:
                # The file shrank after fstat; the declared length can no longer be met,
                # so the connection must not be reused (aiohttp closes it on this error).
                log.warning("%s shrank while being sent; closing the connection", target.relpath)
                raise ConnectionResetError("file truncated while being sent")
            self._sent(ex, len(chunk))
            await resp.write(chunk)
            offset += len(chunk)
            remaining -= len(chunk)


def _joined(headers: CIMultiDictProxy[str], name: str) -> str | None:
    """All field lines of a list-valued header joined with commas (RFC 9110 5.3)."""
    values = headers.getall(name, [])
    return ", ".join(values) if values else None
