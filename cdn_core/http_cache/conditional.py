"""Conditional requests answered from a stored response (RFC 9110 13, RFC 9111 4.3.2)."""

from __future__ import annotations

from cdn_core.http_cache import Fields
from cdn_core.http_cache.cache_control import split_list
from cdn_core.http_cache.dates import parse_http_date


def parse_etags(value: str) -> list[str] | None:
    """Entity-tags in an ``If-Match``/``If-None-Match`` value; ``None`` means ``*``."""
    if value.strip() == "*":
        return None
    return split_list(value)


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def weak_match(a: str, b: str) -> bool:
    """Weak comparison (RFC 9110 8.8.3.2): opaque tags equal, either may be weak."""
    return _opaque(a.strip()) == _opaque(b.strip())


def strong_match(a: str, b: str) -> bool:
    """Strong comparison (RFC 9110 8.8.3.2): both strong and identical."""
    a, b = a.strip(), b.strip()
    return not a.startswith("W/") and not b.startswith("W/") and a == b


def evaluate(
    method: str, request_fields: Fields, *, etag: str | None, last_modified: str | None
) -> int | None:
    """Evaluate preconditions against the selected representation (RFC 9110 13.2.2 order).

    Returns 304 (not modified), 412 (precondition failed) or ``None`` (serve normally).
    """
    if_match = request_fields.get("if-match")
    if if_match is not None:
        tags = parse_etags(if_match)
        if tags is None:
            pass  # "*" matches any current representation; we have one
        elif etag is None or not any(strong_match(t, etag) for t in tags):
            return 412
    else:
        ius = parse_http_date(request_fields.get("if-unmodified-since"))
        lm = parse_http_date(last_modified)
        if ius is not None and lm is not None and lm > ius:
            return 412
    inm = request_fields.get("if-none-match")
    if inm is not None:
        tags = parse_etags(inm)
        matched = tags is None or (etag is not None and any(weak_match(t, etag) for t in tags))
        if matched:
            return 304 if method in ("GET", "HEAD") else 412
        return None
    if method in ("GET", "HEAD"):
        ims = parse_http_date(request_fields.get("if-modified-since"))
        lm = parse_http_date(last_modified)
        if ims is not None and lm is not None and lm <= ims:
            return 304
    return None


def selects_stored(
    *,
    stored_etag: str | None,
    stored_last_modified: str | None,
    etag: str | None,
    last_modified: str | None,
) -> bool:
    """Whether a 304 with validators ``etag``/``last_modified`` is about the stored response
    with ``stored_etag``/``stored_last_modified`` (RFC 9111 4.3.4), so that it may update
    it. A 304 naming another entity-tag, or (without entity-tags on both sides) another
    modification date, is about some other representation and must update nothing. A 304
    that omits its validators is taken to be about the response we asked about."""
    if etag is not None and stored_etag is not None:
        return weak_match(etag, stored_etag)
    if last_modified is not None and stored_last_modified is not None:
        new, old = parse_http_date(last_modified), parse_http_date(stored_last_modified)
        return new is None or old is None or new == old
    return True
