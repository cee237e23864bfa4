"""Prewarm: one URL fetched through a tier on the control plane's behalf (``POST
/prewarm``), collapsed with client misses and stored under the key a client's request
would get (a service's key when the node runs services)."""

from __future__ import annotations

from cdn_core.node.exchange.keys import key_from_url, normalize_host
from cdn_core.node.exchange.request import Request
from cdn_core.node.proxy.handler import CachingProxy


async def prewarm(proxy: CachingProxy, url: str) -> str:
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
        "GET", target, [("Host", host)], {"host": host}, "1.1", True, b"", "127.0.0.1",
        scheme=key.partition("://")[0],
    )
    svc = proxy.service_for(normalize_host(host))
    if svc is not None:  # the key and rules the service's own requests get
        prep = svc.prepare("GET", req.scheme, normalize_host(host), target)
        key = svc.full_key(prep, req.fields.get)
        req.service, req.service_path = svc, prep.path
    stale = proxy.store.lookup(key, req.fields)
    if stale is not None and stale.freshness.age(proxy.clock.time()) < (
        stale.freshness.freshness_lifetime
    ):
        return "hit"
    result = await proxy.filler.collapsed(
        key, req, target, stale, "stale" if stale else "uri-miss"
    )
    await result.complete()
    return result.cache_status
