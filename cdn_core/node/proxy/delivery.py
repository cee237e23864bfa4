"""Delivering responses to clients: stored responses (with conditional requests, single and
multiple byte ranges), bodies still streaming in from upstream, and pass-through streams,
written to a :class:`~cdn_core.node.exchange.channel.ResponseChannel` (the wire frames
them).

Every response gets this tier's ``Age`` and ``Cache-Status`` lines (RFC 9111 5.1,
RFC 9211); everything else of a stored response's head is pre-serialised.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cdn_core.errors import UpstreamError
from cdn_core.heads import NOT_UPDATED, serialize_head
from cdn_core.http_cache.conditional import evaluate
from cdn_core.http_cache.ranges import UNSATISFIABLE, if_range_allows, parse_range
from cdn_core.node.exchange.channel import ResponseChannel
from cdn_core.node.exchange.request import Request
from cdn_core.node.filling.fill import Fill
from cdn_core.node.filling.upstream import UpstreamStream
from cdn_core.store import StoredResponse

MAX_AGE = 2**31
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
MAX_RANGES = 16  # more parts than this are answered with the whole body (RFC 9110 14.3)


PRECONDITION_FIELDS = frozenset(
    {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since"}
)
# Request fields after which a stored response is not simply sent whole.
_NOT_PLAIN = PRECONDITION_FIELDS | {"range"}


def has_preconditions(fields: Mapping[str, str]) -> bool:
    """Whether the request carries a precondition field (RFC 9110 13.1)."""
    return not PRECONDITION_FIELDS.isdisjoint(fields)


def _overlapping(ranges: list[tuple[int, int]]) -> bool:
    """True when the ranges are not in ascending order or any two overlap."""
    return any(nxt[0] <= prev[1] for prev, nxt in zip(ranges, ranges[1:], strict=False))


class ResponseWriter:
    def __init__(self, name: str) -> None:
        self.via = f"1.1 {name}"
        self._cs_prefix = f"Cache-Status: {name}; ".encode()

    def status_lines(self, age: float, cache_status: bytes) -> bytes:
        """This tier's ``Age`` line (RFC 9111 5.1: whole seconds, past 2**31 sent as
        2147483648) and ``Cache-Status`` line (RFC 9211) with ``cache_status`` as its
        parameters; each ends in CRLF."""
        seconds = max(0, min(int(age), MAX_AGE))
        return b"Age: %d\r\n%s%s\r\n" % (seconds, self._cs_prefix, cache_status)

    def fresh_hit_lines(self, entry: StoredResponse, now: float) -> bytes:
        """:meth:`status_lines` of a fresh hit on ``entry`` at ``now`` (``hit; ttl=N``, N the
        whole seconds of freshness left, RFC 9211 2.1, 2.5). Kept on the entry with the
        instant either whole number changes (``hit_lines_until``): until then a hit reuses
        the bytes instead of formatting them again."""
        fr = entry.freshness
        since = fr.corrected_initial_age + now - fr.response_time  # RFC 9111 4.2.3
        seconds = int(since) if since > 0.0 else 0
        ttl = int(fr.fresh_until - now)
        lines = self.status_lines(seconds, b"hit; ttl=%d" % ttl)
        entry.hit_lines = lines
        # Age reaches seconds + 1 at response_time - corrected_initial_age + seconds + 1;
        # the ttl drops below its whole number after fresh_until - ttl.
        entry.hit_lines_until = min(
            fr.response_time - fr.corrected_initial_age + seconds + 1, fr.fresh_until - ttl
        )
        return lines

    # complete responses ----------------------------------------------------------------
    def precondition(
        self, req: Request, entry: StoredResponse, lines: bytes, conn: ResponseChannel
    ) -> bool:
        """Answer 304/412 from ``entry``'s validators (RFC 9110 13.2.2); False when the
        request has no failing precondition.

        The 304 carries every stored field a cache below would update its copy with
        (RFC 9111 3.2, 4.3.4): all but those 3.2 protects (``NOT_UPDATED``: the body's
        own length, codings, range and type). A tier below revalidating through this one
        thus refreshes exactly as it would from the origin; RFC 9110 15.4.5 allows fields
        that exist to guide cache updates."""
        if not 200 <= entry.status < 300:
            return False  # RFC 9110 13.2.1: preconditions apply to 2xx responses only
        if not has_preconditions(req.fields):
            return False  # the common case: nothing to evaluate
        cond = evaluate(req.method, req.fields, etag=entry.etag, last_modified=entry.last_modified)
        if cond is None:
            return False
        if cond == 304:
            kept = [(n, v) for n, v in entry.headers if n.lower() not in NOT_UPDATED]
            head = serialize_head(304, "Not Modified", kept, None, self.via)
        else:
            head = serialize_head(412, "Precondition Failed", [], 0, self.via)
        conn.respond(head, lines, b"", req.keep_alive)
        return True

    def send_entry(
        self,
        req: Request,
        conn: ResponseChannel,
        entry: StoredResponse,
        lines: bytes,
    ) -> None:
        """Send a complete response and finish the request; ``lines`` are this request's
        :meth:`status_lines`."""
        if _NOT_PLAIN.isdisjoint(req.fields):
            # The common case (no precondition, RFC 9110 13.1, and no Range): stored head,
            # this request's lines, body.
            conn.respond(
                entry.head, lines, entry.body if req.method != "HEAD" else b"", req.keep_alive
            )
            return
        if self.precondition(req, entry, lines, conn):
            return
        if (
            entry.status == 200
            and req.method == "GET"
            and "range" in req.fields
            and if_range_allows(req.fields, etag=entry.etag, last_modified=entry.last_modified)
            and self._send_ranges(req, conn, entry, lines)
        ):
            return
        conn.respond(
            entry.head, lines, entry.body if req.method != "HEAD" else b"", req.keep_alive
        )

    def _send_ranges(
        self, req: Request, conn: ResponseChannel, entry: StoredResponse, lines: bytes
    ) -> bool:
        """206 for one range, ``multipart/byteranges`` for several (RFC 9110 14.6), 416
        when none is satisfiable; False to send the whole 200 (an invalid Range field is
        ignored, 14.2, and so are many-part requests)."""
        size = len(entry.body)
        ranges = parse_range(req.fields["range"], size)
        if ranges == UNSATISFIABLE:
            head = serialize_head(
                416, "Range Not Satisfiable", [("Content-Range", f"bytes */{size}")], 0, self.via
            )
            conn.respond(head, lines, b"", req.keep_alive)
            return True
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES:
            return False
        if len(ranges) > 1 and _overlapping(ranges):
            # RFC 9110 14.3: overlapping or unordered ranges may be ignored; the whole
            # representation once costs less than the same bytes many times.
            return False
        if len(ranges) == 1:
            first, last = ranges[0]
            headers = entry.headers + [("Content-Range", f"bytes {first}-{last}/{size}")]
            head = serialize_head(206, "Partial Content", headers, last - first + 1, self.via)
            conn.respond(head, lines, entry.body[first : last + 1], req.keep_alive)
            return True
        boundary = os.urandom(12).hex()
        ctype = entry.fields.get("content-type", "application/octet-stream")
        parts: list[bytes] = []
        for first, last in ranges:
            parts.append(
                f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\n"
                f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n".encode("latin-1")
            )
            parts.append(entry.body[first : last + 1])
        parts.append(f"\r\n--{boundary}--\r\n".encode())
        body = b"".join(parts)
        headers = [
            (n, v) for n, v in entry.headers if n.lower() not in ("content-type", "content-range")
        ]
        headers.append(("Content-Type", f"multipart/byteranges; boundary={boundary}"))
        head = serialize_head(206, "Partial Content", headers, len(body), self.via)
        conn.respond(head, lines, body, req.keep_alive)
        return True

    # bodies still arriving -----------------------------------------------------------------
    async def send_fill(
        self, req: Request, conn: ResponseChannel, fill: Fill, age: float, cache_status: bytes
    ) -> None:
        """Stream ``fill`` to the client as it arrives. A body cut short upstream ends the
        client's transfer early and closes the connection (RFC 9112 6.3: the client sees
        an incomplete message, never a complete-looking one)."""
        meta = fill.meta
        lines = self.status_lines(age, cache_status)
        if self.precondition(req, meta, lines, conn):
            return
        length = fill.content_length
        wants_range = (
            "range" in req.fields
            and meta.status == 200
            and req.method == "GET"
            and if_range_allows(req.fields, etag=meta.etag, last_modified=meta.last_modified)
        )
        start, stop = 0, None
        if wants_range and length is not None:
            ranges = parse_range(req.fields["range"], length)
            if isinstance(ranges, list) and len(ranges) == 1:
                start, stop = ranges[0][0], ranges[0][1] + 1
            else:
                wants_range = ranges is not None  # invalid Range fields are ignored
        if (
            fill.done
            or req.method == "HEAD"
            or (wants_range and stop is None)
            or (length is None and req.version == "1.0")
        ):
            # Answer from the complete body: HEAD needs its length, HTTP/1.0 cannot take
            # chunked framing, and several ranges (or an unknown length) need the whole.
            await fill.wait_done()
            if fill.entry is None:
                conn.respond(BAD_GATEWAY, b"", b"", False)
            else:
                self.send_entry(req, conn, fill.entry, lines)
            return
        if stop is not None:
            assert length is not None
            headers = meta.headers + [("Content-Range", f"bytes {start}-{stop - 1}/{length}")]
            head = serialize_head(206, "Partial Content", headers, stop - start, self.via)
            conn.start(head, lines, length=stop - start, keep_alive=req.keep_alive)
        else:
            head = serialize_head(meta.status, meta.reason, meta.headers, length, self.via)
            conn.start(head, lines, length=length, keep_alive=req.keep_alive)
        offset = 0
        seen = 0
        while True:
            await fill.wait(seen)
            for chunk in fill.chunks[seen:]:
                lo, hi = offset, offset + len(chunk)
                offset = hi
                if stop is not None:
                    if hi <= start or lo >= stop:
                        continue
                    chunk = chunk[max(0, start - lo) : min(len(chunk), stop - lo)]
                conn.send(chunk)
            seen = len(fill.chunks)
            if fill.failed:
                conn.abort()
                return
            if conn.closed or (stop is not None and offset >= stop):
                break
            if fill.done and seen == len(fill.chunks):
                break
            await conn.drain()
        conn.end(req.keep_alive)

    async def send_stream(
        self,
        req: Request,
        conn: ResponseChannel,
        meta: StoredResponse,
        stream: UpstreamStream,
        age: float,
        cache_status: bytes,
    ) -> None:
        """Pass a body too large to store straight through, with back-pressure."""
        try:
            lines = self.status_lines(age, cache_status)
            if self.precondition(req, meta, lines, conn):
                return
            length = stream.content_length
            head = serialize_head(meta.status, meta.reason, meta.headers, length, self.via)
            if req.method == "HEAD":
                conn.respond(head, lines, b"", req.keep_alive)
                return
            conn.start(head, lines, length=length, keep_alive=req.keep_alive)
            try:
                async for chunk in stream.chunks():
                    if conn.closed:
                        break
                    conn.send(chunk)
                    await conn.drain()
            except UpstreamError:
                conn.abort()  # the client sees an incomplete message (RFC 9112 6.3)
                return
            conn.end(req.keep_alive)
        finally:
            stream.close()
