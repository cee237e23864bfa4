"""Field lists of HTTP/2 and HTTP/3 (RFC 9113 8.2-8.3, RFC 9114 4.2): requests built from
them, response heads turned into them. Shared by :mod:`~cdn_core.node.wire.h2` and
:mod:`~cdn_core.node.wire.h3`; pure, no I/O."""

from __future__ import annotations

from cdn_core.node.exchange.request import Request

# Fields HTTP/2 does not carry (RFC 9113 8.2.2); the rest of an HTTP/1.1 head passes.
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


def response_fields(head: bytes, lines: bytes = b"") -> list[tuple[bytes, bytes]]:
    """An HTTP/1.1-syntax response head (status line, CRLF-terminated field lines) and
    this tier's ``lines`` as HTTP/2 or HTTP/3 header fields: ``:status`` first, names lower-case,
    connection-specific fields left out (RFC 9113 8.2.2, 8.3.2)."""
    first, _, rest = (head + lines).partition(b"\r\n")
    out = [(b":status", first.split(b" ", 2)[1])]
    for line in rest.split(b"\r\n"):
        if not line:
            continue
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname not in CONNECTION_SPECIFIC:
            out.append((lname, value.strip()))
    return out


def request_from_fields(
    raw: list[tuple[bytes, bytes]], body: bytes, client: str, scheme: str, version: str
) -> Request:
    """A :class:`Request` from an HTTP/2 or HTTP/3 field list (already validated by h2 or
    aioquic): ``:authority`` becomes ``Host`` when there is none, cookie crumbs are joined
    with ``"; "`` (RFC 9113 8.2.3, RFC 9114 4.2.1), other repeated fields with ``", "``."""
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in raw:
        if name[:1] == b":":
            pseudo[name] = value
            continue
        n, v = name.decode("latin-1"), value.decode("latin-1")
        if n == "cookie":
            cookies.append(v)
            continue
        headers.append((n, v))
        fields[n] = f"{fields[n]}, {v}" if n in fields else v
    authority = pseudo.get(b":authority")
    if authority is not None and "host" not in fields:
        host = authority.decode("latin-1")
        headers.insert(0, ("host", host))
        fields["host"] = host
    if cookies:
        joined = "; ".join(cookies)
        headers.append(("cookie", joined))
        fields["cookie"] = joined
    method = pseudo.get(b":method", b"GET").decode("latin-1")
    target = pseudo.get(b":path", b"/").decode("latin-1")
    return Request(method, target, headers, fields, version, True, body, client, scheme)


def interim_fields(status: int, fields: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """A 1xx response (``status``, its ``(name, value)`` fields as the upstream sent them)
    as HTTP/2 or HTTP/3 header fields, connection-specific ones left out (RFC 9113 8.2.2)."""
    out = [(b":status", str(status).encode())]
    for n, v in fields:
        name = n.lower().encode("latin-1")
        if name not in CONNECTION_SPECIFIC:
            out.append((name, v.encode("latin-1")))
    return out
