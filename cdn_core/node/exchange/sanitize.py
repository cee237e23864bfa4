"""Request sanitising at every tier, against cache poisoning (issue 12; RFC 7239, RFC 9110
7.6.1).

Headers a client could use to make an origin build a different response than the cache key
says — forwarding claims (``X-Forwarded-*``, ``Forwarded``) and URL or method overrides
(``X-Original-URL``, ``X-HTTP-Method-Override``, ...) — are removed before the request is
looked up or forwarded, unless a trusted forwarder (a mid tier's edges,
:class:`ForwardedTrust`) sent them; the node then states what it saw itself when it
forwards (see :meth:`cdn_core.node.filling.filler.UpstreamFiller.upstream_headers`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

from cdn_core.node.exchange.request import Request

UNTRUSTED_REQUEST_FIELDS = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-scheme",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "x-forwarded-ssl",
        "x-real-ip",
        "true-client-ip",
        "client-ip",
        "x-client-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-original-host",
        "x-host",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    }
)


def strip_untrusted(req: Request) -> None:
    """Remove :data:`UNTRUSTED_REQUEST_FIELDS` from ``req`` (in place). The proxy calls it
    only when one is present (one C-level set test per request)."""
    fields = req.fields
    req.headers = [(n, v) for n, v in req.headers if n.lower() not in UNTRUSTED_REQUEST_FIELDS]
    for name in [n for n in fields if n in UNTRUSTED_REQUEST_FIELDS]:
        del fields[name]


class ForwardedTrust:
    """Whose forwarding fields a node believes (nginx's ``set_real_ip_from``, Varnish's
    ACLs): requests from ``networks`` (a mid tier's edges) keep their ``X-Forwarded-*``
    and ``Forwarded`` fields and their ``X-Forwarded-Proto`` (``http`` or ``https``)
    becomes the request's scheme, so the cache key carries the client's scheme at every
    tier (RFC 9111 2); everyone else's claims are removed (:func:`strip_untrusted`) and
    the node states what it saw itself when it forwards."""

    def __init__(self, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self.networks = tuple(networks)
        self._memo: dict[str, bool] = {}  # client address -> trusted (a few edges)

    def trusted(self, client: str) -> bool:
        """Whether ``client`` (an IP address as text) is in one of the networks."""
        known = self._memo.get(client)
        if known is None:
            try:
                addr = ipaddress.ip_address(client.partition("%")[0])
            except ValueError:
                addr = None
            known = addr is not None and any(addr in net for net in self.networks)
            if len(self._memo) >= 1024:
                self._memo.clear()
            self._memo[client] = known
        return known

    def admit(self, req: Request) -> None:
        """Keep a trusted forwarder's fields and take its scheme; strip anyone else's."""
        if self.networks and self.trusted(req.client):
            proto = req.fields.get("x-forwarded-proto", "").strip().lower()
            if proto in ("http", "https"):
                req.scheme = proto
            req.forwarded = True
            return
        strip_untrusted(req)


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


# Request fields that are part of the key, or set by our own tiers: their values
# appearing in a response prove nothing.
NOT_PROBED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "te",
        "via",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
    }
)
# Generic fields every browser sends alike, and validators responses echo by design:
# probed only when a value holds a character their grammars never need (RFC 9110 5.6:
# tokens, quoted strings, lists, parameters, dates), such as the "<" of an injected
# script. A page that reflects Accept-Language is poisoned as surely as by any header.
PROBED_WHEN_UNUSUAL = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "pragma",
        "content-type",
        "if-none-match",
        "if-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        "range",
    }
)
_USUAL = re.compile(r"[A-Za-z0-9 \t!$%'*+\-.^_|~,;=/:?@]*")
MIN_PROBE_BYTES = 8  # shorter values occur in ordinary pages by chance


def reflection_probes(
    headers: list[tuple[str, str]], keyed: tuple[str, ...], unkeyed_query: Iterable[str] = ()
) -> list[bytes]:
    """Values of unkeyed request field lines (``(name, value)`` as received) long enough
    that finding one in a response means the response was built from it (the header is
    reflected): such a response must not be stored for everyone (web cache poisoning).
    Fields named in ``Vary`` are keyed. Each line is probed on its own, and each cookie
    of a ``Cookie`` line: a value repeated over several lines is not one long value that
    a reflection of its last line would miss. ``unkeyed_query`` holds the values
    (percent-encoded, as sent) of query parameters the cache key leaves out (a service's
    ``cache_key.query``); they are probed as decoded, as an origin reads them."""
    out = []
    for raw in unkeyed_query:
        value = unquote_plus(raw, encoding="latin-1")
        if len(value) >= MIN_PROBE_BYTES:
            out.append(value.encode("latin-1", "replace"))
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in NOT_PROBED or name in keyed or len(value) < MIN_PROBE_BYTES:
            continue
        if name in PROBED_WHEN_UNUSUAL and _USUAL.fullmatch(value):
            continue
        for part in value.split(";") if name == "cookie" else (value,):
            part = _cookie_value(part) if name == "cookie" else part.strip()
            if len(part) >= MIN_PROBE_BYTES:
                out.append(part.encode("latin-1", "replace"))
    return out


def unprobed_cookie(headers: list[tuple[str, str]]) -> bool:
    """Whether a request ``Cookie`` line (``(name, value)`` lines as received) holds a
    value too short to probe for (under ``MIN_PROBE_BYTES``): a response to it may be
    personalised on that value (``lang=en``) or reflect it, and neither can be told from
    chance, so it is not stored for everyone unless ``cache.store_with_short_cookies``
    says so."""
    for name, cookie in headers:
        if name.lower() != "cookie":
            continue
        for part in cookie.split(";"):
            value = _cookie_value(part)
            if value and len(value) < MIN_PROBE_BYTES:
                return True
    return False


def _cookie_value(pair: str) -> str:
    """The value of one ``name=value`` cookie as a server reads it: without the quotes
    RFC 6265 4.1.1 allows around it; a pair without ``=`` is all value (servers differ on
    what it is, so it is probed whole)."""
    name, eq, value = pair.strip().partition("=")
    return value.strip().strip('"') if eq else name


# Response fields the origin's own software fills in (a Server header naming the same
# library as the client's User-Agent is not a reflection).
NOT_SCANNED = frozenset(
    {
        "server",
        "date",
        "etag",
        "last-modified",
        "expires",
        "age",
        "cache-control",
        "content-type",
        "content-length",
        "vary",
        "via",
        "accept-ranges",
        "cache-status",
    }
)


def reflected(probes: list[bytes], headers: list[tuple[str, str]], body: bytes = b"") -> bool:
    """True when any probe occurs in the response's body or in a header value that could
    carry request data (``Location``, ``Link``, ``Set-Cookie``, ``X-*``...)."""
    if not probes:
        return False
    head = "\n".join(v for n, v in headers if n.lower() not in NOT_SCANNED).encode(
        "latin-1", "replace"
    )
    return any(p in head or p in body for p in probes)
