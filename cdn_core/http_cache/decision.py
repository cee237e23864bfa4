"""What to do with a stored response for a new request (RFC 9111 4, 4.2.4, 4.3; RFC 5861).

:func:`decide` is a pure function of the stored response's metadata, the request's
Cache-Control and ``now``; the node runtime performs the I/O it asks for.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cdn_core.http_cache.age import current_age
from cdn_core.http_cache.cache_control import CacheControl


class Action(enum.Enum):
    FRESH = "fresh"  # serve from cache
    STALE_OK = "stale-ok"  # serve stale without revalidation (request max-stale)
    STALE_WHILE_REVALIDATE = "swr"  # serve stale, revalidate in the background (RFC 5861 3)
    REVALIDATE = "revalidate"  # conditional request upstream before serving


@dataclass(frozen=True, slots=True)
class Freshness:
    """Timing facts of a stored response, in seconds (``*_time`` since the epoch)."""

    freshness_lifetime: float
    corrected_initial_age: float
    response_time: float
    # The instant the response stops being fresh: ``response_time + freshness_lifetime -
    # corrected_initial_age`` (the same test as ``age(now) < freshness_lifetime``), kept
    # so that a hit compares one number.
    fresh_until: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "fresh_until",
            self.response_time + self.freshness_lifetime - self.corrected_initial_age,
        )

    def age(self, now: float) -> float:
        return current_age(
            corrected_initial_age=self.corrected_initial_age,
            response_time=self.response_time,
            now=now,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    age: float  # current age, seconds
    ttl: float  # freshness_lifetime - age; negative when stale


def decide(
    meta: Freshness,
    response_cc: CacheControl,
    request_cc: CacheControl,
    now: float,
    *,
    pragma_no_cache: bool = False,
) -> Decision:
    """Choose how to use a stored response.

    - Response ``no-cache`` (unqualified), request ``no-cache`` (or ``Pragma: no-cache``
      without Cache-Control, RFC 9111 5.4), request ``max-age`` exceeded, or request
      ``min-fresh`` not met: revalidate (RFC 9111 5.2.1, 5.2.2.4).
    - Fresh and ``immutable`` (RFC 8246): serve, whatever the request's reload directives.
    - Fresh: serve.
    - Stale: ``must-revalidate``/``proxy-revalidate``/``s-maxage`` forbid serving stale
      (5.2.2.2, 5.2.2.8, 5.2.2.10); a request ``max-stale`` covering the staleness allows
      it (5.2.1.2); ``stale-while-revalidate`` within its window serves stale and
      revalidates in the background (RFC 5861 3); otherwise revalidate.
    """
    age = meta.age(now)
    ttl = meta.freshness_lifetime - age
    if response_cc.immutable and ttl > 0 and not response_cc.no_cache:
        # RFC 8246 2: an immutable response does not change while fresh, so a reload's
        # no-cache or max-age=0 is answered from the cache without revalidation.
        return Decision(Action.FRESH, age, ttl)
    if response_cc.no_cache or request_cc.no_cache or pragma_no_cache:
        return Decision(Action.REVALIDATE, age, ttl)
    if request_cc.max_age is not None and age > request_cc.max_age:
        return Decision(Action.REVALIDATE, age, ttl)
    if request_cc.min_fresh is not None and ttl < request_cc.min_fresh:
        return Decision(Action.REVALIDATE, age, ttl)
    if ttl > 0:
        return Decision(Action.FRESH, age, ttl)
    if forbids_stale(response_cc):
        return Decision(Action.REVALIDATE, age, ttl)
    staleness = -ttl
    if request_cc.max_stale is not None and staleness <= request_cc.max_stale:
        return Decision(Action.STALE_OK, age, ttl)
    swr = response_cc.stale_while_revalidate
    if swr is not None and staleness <= swr:
        return Decision(Action.STALE_WHILE_REVALIDATE, age, ttl)
    return Decision(Action.REVALIDATE, age, ttl)


def forbids_stale(response_cc: CacheControl) -> bool:
    """True when a shared cache must not serve the response stale (RFC 9111 5.2.2.2,
    5.2.2.8, 5.2.2.10 — ``s-maxage`` implies ``proxy-revalidate`` for shared caches)."""
    return (
        response_cc.must_revalidate
        or response_cc.proxy_revalidate
        or response_cc.s_maxage is not None
    )


def may_serve_stale_on_error(
    meta: Freshness,
    response_cc: CacheControl,
    request_cc: CacheControl,
    now: float,
    *,
    failover_window: float = 0.0,
) -> bool:
    """Whether a stale response may answer when the upstream failed (RFC 5861 4
    ``stale-if-error`` from the response or the request, or the operator's failover window
    in seconds), never when the response forbids stale use (RFC 9111 4.2.4) or must be
    validated before every use (unqualified ``no-cache``, 5.2.2.4), fresh or not."""
    if forbids_stale(response_cc) or response_cc.no_cache:
        return False
    staleness = max(0.0, meta.age(now) - meta.freshness_lifetime)
    windows = [failover_window]
    if response_cc.stale_if_error is not None:
        windows.append(float(response_cc.stale_if_error))
    if request_cc.stale_if_error is not None:
        windows.append(float(request_cc.stale_if_error))
    return staleness <= max(windows)
