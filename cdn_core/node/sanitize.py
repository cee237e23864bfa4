"""Request sanitising at the edge, against cache poisoning (issue 12; RFC 7239, RFC 9110
7.6.1).

Headers a client could use to make an origin build a different response than the cache key
says — forwarding claims (``X-Forwarded-*``, ``Forwarded``) and URL or method overrides
(``X-Original-URL``, ``X-HTTP-Method-Override``, ...) — are removed before the request is
looked up or forwarded; the edge then states what it saw itself when it forwards (see
``CachingProxy._upstream_headers``).
"""

from __future__ import annotations

from cdn_core.node.protocol import HttpServerProtocol, Request

UNTRUSTED_REQUEST_FIELDS = frozenset({
    "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
    "x-forwarded-scheme", "x-forwarded-port", "x-forwarded-server", "x-forwarded-prefix",
    "x-forwarded-ssl", "x-real-ip", "true-client-ip", "client-ip", "x-client-ip",
    "x-original-url", "x-rewrite-url", "x-original-host", "x-host",
    "x-http-method-override", "x-http-method", "x-method-override",
})


def strip_untrusted(req: Request, conn: HttpServerProtocol) -> bool:
    """Request gate: remove :data:`UNTRUSTED_REQUEST_FIELDS` from ``req`` (in place).
    Costs one set lookup per header line when none is present (the usual case)."""
    fields = req.fields
    if not any(name in UNTRUSTED_REQUEST_FIELDS for name in fields):
        return True
    req.headers = [(n, v) for n, v in req.headers if n.lower() not in UNTRUSTED_REQUEST_FIELDS]
    for name in [n for n in fields if n in UNTRUSTED_REQUEST_FIELDS]:
        del fields[name]
    return True


def forwarded_fields(client: str, host: str, scheme: str = "http") -> list[tuple[str, str]]:
    """What the edge tells the next tier about the client (RFC 7239 4 and the de-facto
    ``X-Forwarded-*`` fields), replacing anything the client claimed."""
    node = f'"[{client}]"' if ":" in client else client
    host_q = host.replace('"', "")
    return [
        ("X-Forwarded-For", client),
        ("X-Forwarded-Proto", scheme),
        ("X-Forwarded-Host", host),
        ("Forwarded", f'for={node};host="{host_q}";proto={scheme}'),
    ]
