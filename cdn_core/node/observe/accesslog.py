"""Sampled, structured access logs of a caching node: one JSON object per line.

Configured by ``access_log: {sample: 0.01, path: null}`` in the node's config
(:class:`AccessLogSettings`): ``sample`` is the fraction of requests logged (0 turns the
log off, 1 logs every request), ``path`` the file appended to (``null``: standard output,
which is what containers and ``cdnctl up``'s per-service log files collect). Rotation is
left to the platform: the file is reopened when it was moved or removed (logrotate
without ``copytruncate``, newsyslog), checked at most once a second.

A line (keys always present, ``null`` when unknown)::

    {"time": "2026-01-02T03:04:05.678Z", "node": "edge1", "tier": "edge",
     "client": "203.0.113.7", "method": "GET", "proto": "h2",
     "url": "http://www.example.test/a.css",
     "status": 200, "bytes": 5120,
     "cache_status": "mid1; fwd=uri-miss; fwd-status=200; stored, edge1; fwd=uri-miss; ...",
     "upstream_time": 0.0123, "total_time": 0.0131}

- ``proto`` is the protocol the request came over: ``http/1.1`` (HTTP/1.0 too), ``h2``
  or ``h3``.
- ``cache_status`` is the response's whole ``Cache-Status`` field (RFC 9211): one entry
  per tier, this node's last.
- ``bytes`` counts the body bytes written to the client (after the head; framing such as
  HTTP/1.1 chunks not included).
- ``upstream_time`` is set when this node forwarded the request (its ``Cache-Status``
  entry has ``fwd=``): seconds from receiving the request until the response head went
  out, which for a forwarded request is when the upstream's head arrived (or it failed).
- ``total_time`` is seconds from receiving the request until the response was finished.

Cost on the hit path (DESIGN.md): with sampling off, the proxy's hook is one attribute
test (``if access_log.sample``). With it on, one integer decrement per request decides
(the gaps between logged requests are drawn from a geometric distribution, so the sample
is random, not every n-th request); nothing is formatted for requests not drawn. A drawn
request's :class:`~cdn_core.node.exchange.channel.ResponseChannel` is wrapped so that the
status, the head and the byte count are read from what is actually sent.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
import weakref
from typing import IO, Any

from cdn_core.node.exchange.channel import ForwardingChannel, ResponseChannel
from cdn_core.node.exchange.request import PROTOCOL_OF_VERSION, Request
from cdn_core.node.settings.observe import AccessLogSettings

_REOPEN_CHECK_SECONDS = 1.0


class _Sink:
    """Where lines go: stdout, or a file reopened after the platform rotated it."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._ino: tuple[int, int] | None = None
        self._checked = 0.0
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _open(self) -> IO[str]:
        assert self.path is not None
        self.close()
        f = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open
        st = os.fstat(f.fileno())
        self._file, self._ino = f, (st.st_dev, st.st_ino)
        self._finalizer = weakref.finalize(self, f.close)
        return f

    def write(self, line: str) -> None:
        if self.path is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        f = self._file
        now = time.monotonic()
        if f is None:
            f = self._open()
            self._checked = now
        elif now - self._checked >= _REOPEN_CHECK_SECONDS:
            self._checked = now
            try:
                st = os.stat(self.path)
                moved = (st.st_dev, st.st_ino) != self._ino
            except FileNotFoundError:
                moved = True
            if moved:
                f = self._open()
        f.write(line)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the file once
            self._finalizer = None
        self._file = None


class AccessLog:
    """The sampler and formatter of one node's access log (see the module docstring)."""

    def __init__(self, settings: AccessLogSettings, *, node: str, tier: str) -> None:
        # The proxy tests ``sample`` before anything else: 0.0 means off.
        self.sample = settings.sample
        self.node = node
        self.tier = tier
        self._log_p = math.log1p(-self.sample) if 0 < self.sample < 1 else 0.0
        self._left = self._gap()
        self._sink = _Sink(settings.path)

    def _gap(self) -> int:
        """Requests until the next one logged: geometric with success probability
        ``sample`` (1 when every request is logged)."""
        if self._log_p == 0.0:
            return 1
        u = 1.0 - random.random()  # (0, 1]
        return int(math.log(u) / self._log_p) + 1

    def wrap(self, req: Request, conn: ResponseChannel) -> ResponseChannel:
        """``conn`` itself, or for a drawn request a wrapper that logs it when finished."""
        if isinstance(conn, LoggedConnection):
            return conn  # re-entered (a gate's asynchronous check): already decided
        self._left -= 1
        if self._left > 0:
            return conn
        self._left = self._gap()
        return LoggedConnection(self, req, conn)

    def emit(self, rec: LoggedConnection) -> None:
        self._sink.write(json.dumps(self.record(rec), separators=(",", ":")) + "\n")

    def record(self, rec: LoggedConnection) -> dict[str, Any]:
        """The JSON object for one finished request."""
        req = rec.req
        now = time.perf_counter()
        status, cache_status = _parse_head(rec.head) if rec.head is not None else (None, None)
        forwarded = cache_status is not None and _forwarded(cache_status, self.node)
        upstream = None
        if forwarded and rec.head_at is not None:
            upstream = round(rec.head_at - rec.started, 6)
        target = req.target
        if not target.startswith("/"):
            url = target
        else:
            url = f"{req.scheme}://{req.fields.get('host', '')}{target}"
        return {
            "time": _rfc3339(rec.wall),
            "node": self.node,
            "tier": self.tier,
            "client": req.client,
            "method": req.method,
            "proto": PROTOCOL_OF_VERSION.get(req.version, "http/1.1"),
            "url": url,
            "status": status,
            "bytes": rec.body_bytes,
            "cache_status": cache_status,
            "upstream_time": upstream,
            "total_time": round(now - rec.started, 6),
        }

    def close(self) -> None:
        self._sink.close()


class LoggedConnection(ForwardingChannel):
    """Stands in for a request's channel while one sampled request is answered: passes
    everything through and notes the response head, the body bytes and the times."""

    __slots__ = ("_log", "req", "wall", "started", "head", "head_at", "body_bytes", "_logged")

    def __init__(self, log: AccessLog, req: Request, conn: ResponseChannel) -> None:
        super().__init__(conn)
        self._log = log
        self.req = req
        self.wall = time.time()
        self.started = time.perf_counter()
        self.head: bytes | None = None  # status line and fields, this tier's lines included
        self.head_at: float | None = None
        self.body_bytes = 0
        self._logged = False

    def _see_head(self, head: bytes, lines: bytes) -> None:
        if self.head is None:
            self.head = head + lines
            self.head_at = time.perf_counter()

    def _logged_once(self) -> None:
        if not self._logged:
            self._logged = True
            self._log.emit(self)

    # ResponseChannel (what is not here passes through: ForwardingChannel) -------------------
    def respond(self, head: bytes, lines: bytes, body: bytes, keep_alive: bool) -> None:
        self._see_head(head, lines)
        self.body_bytes += len(body)
        self._conn.respond(head, lines, body, keep_alive)
        self._logged_once()

    def start(self, head: bytes, lines: bytes, *, length: int | None, keep_alive: bool) -> None:
        self._see_head(head, lines)
        self._conn.start(head, lines, length=length, keep_alive=keep_alive)

    def send(self, chunk: bytes) -> None:
        self.body_bytes += len(chunk)
        self._conn.send(chunk)

    def end(self, keep_alive: bool) -> None:
        self._conn.end(keep_alive)
        self._logged_once()

    def abort(self) -> None:
        self._conn.abort()
        self._logged_once()


def _parse_head(head: bytes) -> tuple[int | None, str | None]:
    """Status code and combined ``Cache-Status`` of a serialised response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = None
    parts = lines[0].split(" ", 2)
    if len(parts) >= 2 and parts[1].isdigit():
        status = int(parts[1])
    values = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "cache-status":
            values.append(value.strip())
    return status, ", ".join(values) or None


def _forwarded(cache_status: str, node: str) -> bool:
    """Whether this node's (the last) Cache-Status entry says it went upstream."""
    last = cache_status.rsplit(",", 1)[-1].strip()
    name, _, params = last.partition(";")
    return name.strip() == node and "fwd=" in params


def _rfc3339(t: float) -> str:
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"
