"""The operator's failover override on a mid-tier node: a proxy gate that, while
``forced`` (set from the control plane's heartbeat answer, ``cdnctl failover on``),
answers GET and HEAD requests from any stored copy, fresh or stale, without asking the
origin; or only for the services named (``cdnctl failover on --service NAME``).
Responses that forbid stale use (``must-revalidate``, ``proxy-revalidate``,
``s-maxage``, RFC 9111 4.2.4) and requests for objects the node does not hold go on to
the origin as usual. Such answers carry ``Cache-Status: <node>; hit; detail=failover``
when stale.
"""

from __future__ import annotations

import logging

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.decision import may_serve_stale_on_error
from cdn_core.node.exchange.channel import ResponseChannel
from cdn_core.node.exchange.keys import cache_key, normalize_host, normalize_target
from cdn_core.node.exchange.request import Request
from cdn_core.node.proxy.handler import CachingProxy

log = logging.getLogger("cdn.node.failover")


class ForcedFailover:
    def __init__(self, proxy: CachingProxy) -> None:
        self.proxy = proxy
        self.forced = False
        self.services: frozenset[str] = frozenset()  # forced for these services only
        self.served = 0

    def set(self, forced: bool, services: frozenset[str] = frozenset()) -> None:
        self.forced = forced
        self.services = services

    def gate(self, req: Request, conn: ResponseChannel) -> bool:
        if not (self.forced or self.services) or req.method not in ("GET", "HEAD"):
            return True
        host = req.fields.get("host")
        if not host or "," in host or not req.target.startswith("/"):
            return True
        proxy = self.proxy
        # The key as the proxy builds it (RFC 3986 6.2.2 normal form), so that every
        # spelling of a URL finds the same stored copy: a service's key when the node
        # runs services.
        target = normalize_target(req.target)
        services = proxy.services
        if services is None:
            if not self.forced:
                return True
            key = cache_key(req.scheme, host, target)
        else:
            name = normalize_host(host)
            svc = services.select(name)
            if svc is None or not (self.forced or svc.name in self.services):
                return True
            key = svc.full_key(svc.prepare(req.method, req.scheme, name, target),
                               req.fields.get)
        entry = proxy.store.lookup(key, req.fields)
        if entry is None:
            return True
        now = proxy.clock.time()
        age = entry.freshness.age(now)
        if age < entry.freshness.freshness_lifetime:
            return True  # fresh: the proxy serves it as a hit anyway
        if not may_serve_stale_on_error(
            entry.freshness,
            entry.cc,
            parse_cache_control(req.fields.get("cache-control")),
            now,
            failover_window=float("inf"),
        ):
            return True
        self.served += 1
        proxy.metrics.counted(req.version)["stale"].inc()
        proxy.metrics.stale_served.inc()
        lines = proxy.writer.status_lines(age, b"hit; detail=failover")
        proxy.writer.send_entry(req, conn, entry, lines)
        return False
