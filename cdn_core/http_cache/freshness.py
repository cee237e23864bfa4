"""Freshness lifetime (RFC 9111 4.2.1, 4.2.2) for a shared cache."""

from __future__ import annotations

from cdn_core.http_cache import Fields
from cdn_core.http_cache.cache_control import CacheControl
from cdn_core.http_cache.dates import parse_http_date

# RFC 9110 15.1: status codes that are heuristically cacheable.
HEURISTICALLY_CACHEABLE = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})

DEFAULT_HEURISTIC_FRACTION = 0.1
DEFAULT_HEURISTIC_MAX = 86_400.0


def freshness_lifetime(
    status: int,
    fields: Fields,
    cc: CacheControl,
    *,
    date_value: float,
    shared: bool = True,
    heuristic_fraction: float = DEFAULT_HEURISTIC_FRACTION,
    heuristic_max: float = DEFAULT_HEURISTIC_MAX,
) -> float:
    """Seconds the response stays fresh, from the first rule that applies (RFC 9111 4.2.1):
    ``s-maxage`` (shared caches), ``max-age``, ``Expires - Date``, then a heuristic (4.2.2):
    ``heuristic_fraction`` of ``Date - Last-Modified``, capped at ``heuristic_max``, only
    for heuristically cacheable status codes (RFC 9110 15.1) or ``public`` responses.

    ``date_value`` is the response's ``Date`` (or the time it was received when absent).
    An invalid ``Expires`` (such as ``0``, or a date in any zone but ``GMT``) means already
    expired (RFC 9111 5.3).
    """
    if shared and cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    expires_raw = fields.get("expires")
    if expires_raw is not None:
        # Several Expires lines combine into a value that is no HTTP-date, so they too read
        # as stale (RFC 9111 4.2.1 allows that).
        expires = parse_http_date(expires_raw)
        if expires is None:
            return 0.0
        return max(0.0, expires - date_value)
    if status in HEURISTICALLY_CACHEABLE or cc.public:
        last_modified = parse_http_date(fields.get("last-modified"))
        if last_modified is not None and last_modified < date_value:
            return min(heuristic_max, (date_value - last_modified) * heuristic_fraction)
    return 0.0


def has_explicit_expiration(fields: Fields, cc: CacheControl, *, shared: bool = True) -> bool:
    """True when the response states its own freshness lifetime (RFC 9111 4.2.1)."""
    return cc.max_age is not None or (shared and cc.s_maxage is not None) or "expires" in fields
