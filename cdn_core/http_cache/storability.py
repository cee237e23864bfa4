"""Whether a shared cache may store a response (RFC 9111 3, 3.5)."""

from __future__ import annotations

from cdn_core.http_cache import Fields
from cdn_core.http_cache.cache_control import CacheControl
from cdn_core.http_cache.freshness import HEURISTICALLY_CACHEABLE, has_explicit_expiration

# Status codes whose caching requirements this cache implements. RFC 9111 3 asks a cache to
# understand the status code only for 206, 304 and responses carrying ``must-understand``
# (5.2.2.3); any other final status may be stored when the response gives it a freshness
# basis.
UNDERSTOOD_STATUS = frozenset(
    {200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 451, 501}
)
# Never stored whole: 206 (we store only complete bodies and answer ranges from them) and
# 304 (it updates a stored response, 4.3.4).
NOT_STORED_STATUS = frozenset({206, 304})
# Errors a client causes with its own request (malformed, too large, timed out...): stored,
# one client's bad request would answer everyone (cache-poisoned denial of service).
CLIENT_CAUSED_STATUS = frozenset({400, 408, 411, 413, 414, 417, 431})
CACHEABLE_METHODS = frozenset({"GET"})


def storable(
    *,
    method: str,
    status: int,
    request_fields: Fields,
    request_cc: CacheControl,
    response_fields: Fields,
    response_cc: CacheControl,
    share_set_cookie: bool = False,
) -> tuple[bool, str]:
    """Return ``(True, "")`` when a shared cache may store the response, else
    ``(False, reason)`` where reason is a short token for metrics and Cache-Status.

    RFC 9111 3: cacheable method, final status (not 206/304), no ``no-store`` in request or
    response, not ``private`` (unqualified), ``Authorization`` only with ``public``,
    ``s-maxage`` or ``must-revalidate`` (3.5), and some basis for freshness (explicit
    expiration, ``public``, ``no-cache``, or a heuristically cacheable status).
    ``must-understand`` (5.2.2.3) limits storing to status codes in
    :data:`UNDERSTOOD_STATUS` and, for those, overrides the response's ``no-store``.
    Server errors other than 501 are not stored whatever their freshness: by policy a
    stored response is never replaced by an error (RFC 5861 4 lets the stale one answer).
    ``Vary: *`` is refused because it can never be reused (4.1). A response with
    ``Set-Cookie`` is shared only when ``share_set_cookie`` is set and the origin marked it
    explicitly cacheable (``public`` or ``s-maxage``): RFC 9111 7.3 leaves this to the
    cache, and sharing one client's cookie with everyone is the classic CDN leak.
    """
    if method not in CACHEABLE_METHODS:
        return False, "method"
    if not 200 <= status <= 599 or status in NOT_STORED_STATUS:
        return False, "status"
    if status in CLIENT_CAUSED_STATUS:
        return False, "client-error"
    understood = status in UNDERSTOOD_STATUS
    if response_cc.must_understand and not understood:
        return False, "must-understand"
    if request_cc.no_store or (
        response_cc.no_store and not (response_cc.must_understand and understood)
    ):
        return False, "no-store"
    if status >= 500 and status != 501:
        return False, "status"
    if response_cc.private:
        return False, "private"
    if "authorization" in request_fields and not (
        response_cc.public or response_cc.s_maxage is not None or response_cc.must_revalidate
    ):
        return False, "authorization"
    if "set-cookie" in response_fields and not (
        share_set_cookie and (response_cc.public or response_cc.s_maxage is not None)
    ):
        return False, "set-cookie"
    if response_fields.get("vary", "").strip() == "*" or "*" in [
        v.strip() for v in response_fields.get("vary", "").split(",")
    ]:
        return False, "vary-star"
    if not (
        has_explicit_expiration(response_fields, response_cc)
        or response_cc.public
        or response_cc.no_cache
        or status in HEURISTICALLY_CACHEABLE
    ):
        return False, "no-freshness"
    return True, ""
