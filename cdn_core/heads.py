"""Response heads as every tier writes them: which fields are hop-by-hop (RFC 9110 7.6.1),
combining field lines (5.3), and the serialised head the request path hands to a
:class:`~cdn_core.node.exchange.channel.ResponseChannel`.

A head is the status line and the header field lines in HTTP/1.1 syntax, each ending in
CRLF, without the blank line that ends it: the HTTP/1.1 wire writes it as it is (a stored
response's head is serialised once, at store time), and other wires translate it.
"""

from __future__ import annotations

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        # RFC 9110 11.7.3: meant for the next client on the chain only.
        "proxy-authentication-info",
    }
)
# Fields recomputed by each tier rather than copied.
NOT_STORED = HOP_BY_HOP | {"content-length", "age"}
# RFC 9111 3.2 / 4.3.4: fields a 304 must not overwrite in the stored response: those not
# stored at all, Content-Length (the stored body's own), and those describing the stored
# body that this tier processes (codings, ranges, and the type the optimiser keys on).
NOT_UPDATED = NOT_STORED | {"content-encoding", "content-range", "content-type"}


def connection_named(fields: dict[str, str]) -> set[str]:
    return {t.strip().lower() for t in fields.get("connection", "").split(",") if t.strip()}


def combine(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Lower-case field name -> combined value (RFC 9110 5.3)."""
    out: dict[str, str] = {}
    for name, value in headers:
        lname = name.lower()
        prev = out.get(lname)
        out[lname] = value if prev is None else f"{prev}, {value}"
    return out


def end_to_end(headers: list[tuple[str, str]], drop: frozenset[str]) -> list[tuple[str, str]]:
    """``headers`` without hop-by-hop fields, fields named in ``Connection`` and ``drop``."""
    named = connection_named(combine([(n, v) for n, v in headers if n.lower() == "connection"]))
    return [(n, v) for n, v in headers if n.lower() not in drop and n.lower() not in named]


def serialize_head(
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    body_length: int | None,
    via: str,
) -> bytes:
    """Status line and header lines (each ending CRLF, no blank line), with
    ``Content-Length`` (omitted for 1xx/204/``None``) and this tier's ``Via`` line."""
    parts = [f"HTTP/1.1 {status} {reason or 'Unknown'}\r\n"]
    parts.extend(f"{n}: {v}\r\n" for n, v in headers)
    if body_length is not None and status != 204 and status >= 200:
        parts.append(f"Content-Length: {body_length}\r\n")
    parts.append(f"Via: {via}\r\n")
    return "".join(parts).encode("latin-1", "replace")


def plain_response(
    status: int,
    reason: str,
    message: str,
    *,
    allow: str | None = None,
    retry_after: int | None = None,
    location: str | None = None,
) -> tuple[bytes, bytes]:
    """The head and body of a small ``text/plain`` answer the node makes itself (errors,
    refusals), never stored (``Cache-Control: no-store``); ``allow`` adds an ``Allow``
    field (a 405 names the methods that are served, RFC 9110 15.5.6), ``retry_after``
    (seconds) a ``Retry-After`` (a 503 says when to come back, RFC 9110 10.2.3),
    ``location`` a ``Location`` (a redirect, RFC 9110 10.2.2; the caller passes a value
    without control characters)."""
    body = (message + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
    )
    if allow is not None:
        head += f"Allow: {allow}\r\n"
    if retry_after is not None:
        head += f"Retry-After: {retry_after}\r\n"
    if location is not None:
        head += f"Location: {location}\r\n"
    return head.encode(), body
