"""Turning upstream responses into stored responses (RFC 9111 3.1: what a cache stores)
and refreshing them from a 304 (4.3.4); which fields are forwarded and stored is
:mod:`cdn_core.heads`. A response without a valid ``Date`` gets one from the
time it was received (RFC 9110 6.6.1), replacing the invalid value rather than adding a
second.
"""

from __future__ import annotations

from cdn_core.heads import (
    NOT_STORED,
    NOT_UPDATED,
    combine,
    end_to_end,
    serialize_head,
)
from cdn_core.http_cache.age import corrected_initial_age, parse_age
from cdn_core.http_cache.cache_control import CacheControl, parse_cache_control
from cdn_core.http_cache.dates import format_http_date, parse_http_date
from cdn_core.http_cache.decision import Freshness
from cdn_core.http_cache.freshness import freshness_lifetime
from cdn_core.http_cache.targeted import parse_surrogate_control, parse_targeted
from cdn_core.http_cache.vary import secondary_key, vary_fields
from cdn_core.node.exchange.request import Request
from cdn_core.node.settings.cache import CacheSettings
from cdn_core.store.entry import NO_SURROGATE_KEYS, StoredResponse


def caching_policy(
    fields: dict[str, str], settings: CacheSettings
) -> tuple[CacheControl, dict[str, str]]:
    """The Cache-Control directives this tier obeys and the fields freshness is computed
    from. RFC 9213 2.1: the first targeted field (``settings.targeted_fields``, e.g.
    ``CDN-Cache-Control``) present with a valid value replaces ``Cache-Control`` and
    ``Expires``; an empty or unparseable one is ignored; without any, ``Cache-Control``
    applies. ``Surrogate-Control``, if listed, is read with its own syntax (see
    :mod:`cdn_core.http_cache.targeted`)."""
    for name in settings.targeted_fields:
        lname = name.lower()
        value = fields.get(lname)
        if not value:
            continue
        cc = (
            parse_surrogate_control(value)
            if lname == "surrogate-control"
            else (parse_targeted(value))
        )
        if cc is not None:
            return cc, {k: v for k, v in fields.items() if k != "expires"}
    return parse_cache_control(fields.get("cache-control")), fields


# Fields addressed to CDNs rather than clients, removed by the tier facing clients.
CDN_ONLY_FIELDS = frozenset({"surrogate-key", "cache-tag"})


def surrogate_keys(headers: list[tuple[str, str]]) -> frozenset[str]:
    """Surrogate keys (tags) of a response from ``Surrogate-Key`` (space-separated) and
    ``Cache-Tag`` (comma-separated) fields, for purge by tag."""
    tags: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "surrogate-key":
            tags.extend(value.split())
        elif lname == "cache-tag":
            tags.extend(value.replace(",", " ").split())
    return frozenset(tags) if tags else NO_SURROGATE_KEYS


def _stored_fields(
    headers: list[tuple[str, str]], settings: CacheSettings
) -> tuple[list[tuple[str, str]], dict[str, str], CacheControl, dict[str, str]]:
    kept = end_to_end(headers, NOT_STORED)
    fields = combine(kept)
    cc, policy_fields = caching_policy(fields, settings)
    drop = set(cc.private_fields) | set(cc.no_cache_fields)
    if settings.strip_targeted_fields:
        # The tier facing clients keeps CDN-only fields to itself (as Fastly does with
        # Surrogate-Key): the tags stay in the entry's purge index (build_entry).
        drop |= {n.lower() for n in settings.targeted_fields} | CDN_ONLY_FIELDS
    if drop:
        # RFC 9111 5.2.2.7 / 5.2.2.4: a shared cache must not store (private=) or reuse
        # without revalidation (no-cache=) the named fields; we never keep them.
        kept = [(n, v) for n, v in kept if n.lower() not in drop]
        fields = combine(kept)
    return kept, fields, cc, policy_fields


def build_entry(
    *,
    key: str,
    host: str,
    req: Request,
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    body: bytes,
    request_time: float,
    response_time: float,
    settings: CacheSettings,
    via: str,
) -> StoredResponse:
    """A :class:`StoredResponse` for an upstream response (stored or not, the node serves
    responses through this one shape). Adds ``Date`` when the upstream sent none
    (RFC 9110 6.6.1) and computes freshness (RFC 9111 4.2, RFC 9213) and the secondary
    key (4.1)."""
    kept, fields, cc, policy_fields = _stored_fields(headers, settings)
    date_value = parse_http_date(fields.get("date"))
    if date_value is None:
        date_value = response_time
        kept = _with_date(kept, response_time)
        fields["date"] = kept[-1][1]
    timing = _timing(
        status, policy_fields, cc, headers, date_value, request_time, response_time, settings
    )
    names = vary_fields(fields.get("vary")) or ()
    tags = surrogate_keys(headers)
    entry = StoredResponse(
        key=key,
        host=host,
        status=status,
        reason=reason,
        headers=kept,
        fields=fields,
        body=body,
        cc=cc,
        freshness=timing,
        vary_names=names,
        vary_key=secondary_key(names, req.fields),
        surrogate_keys=tags,
        etag=fields.get("etag"),
        last_modified=fields.get("last-modified"),
    )
    entry.head = serialize_head(status, reason, kept, len(body), via)
    return entry


def _with_date(headers: list[tuple[str, str]], when: float) -> list[tuple[str, str]]:
    """``headers`` with any ``Date`` lines replaced by one for ``when``."""
    out = [(n, v) for n, v in headers if n.lower() != "date"]
    out.append(("Date", format_http_date(when)))
    return out


def _timing(
    status: int,
    policy_fields: dict[str, str],
    cc: CacheControl,
    headers: list[tuple[str, str]],
    date_value: float,
    request_time: float,
    response_time: float,
    settings: CacheSettings,
) -> Freshness:
    """Freshness lifetime (RFC 9111 4.2.1, 4.2.2) and corrected initial age (4.2.3) of a
    response received at ``response_time`` for a request sent at ``request_time``."""
    lifetime = freshness_lifetime(
        status,
        policy_fields,
        cc,
        date_value=date_value,
        heuristic_fraction=settings.heuristic_fraction,
        heuristic_max=settings.heuristic_max_seconds,
    )
    initial_age = corrected_initial_age(
        age_value=parse_age(_field(headers, "age")),
        date_value=date_value,
        request_time=request_time,
        response_time=response_time,
    )
    return Freshness(lifetime, initial_age, response_time)


def _field(headers: list[tuple[str, str]], name: str) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def refresh_from_304(
    entry: StoredResponse,
    headers: list[tuple[str, str]],
    *,
    request_time: float,
    response_time: float,
    settings: CacheSettings,
    via: str,
) -> StoredResponse:
    """The stored response updated by a 304 (RFC 9111 4.3.4): fields in the 304 replace the
    stored ones (except those 3.2 protects); freshness and age restart from the 304's
    ``Date`` and ``Age``. A 304 without a valid ``Date`` is dated when it was received:
    keeping the stored ``Date`` would count the whole time since the first fetch as age,
    and the refreshed response would be stale at once."""
    update = end_to_end(headers, NOT_UPDATED)
    date_value = parse_http_date(_field(update, "date"))
    if date_value is None:
        date_value = response_time
        update = _with_date(update, response_time)
    replaced = {n.lower() for n, _ in update}
    merged = [(n, v) for n, v in entry.headers if n.lower() not in replaced] + update
    kept, fields, cc, policy_fields = _stored_fields(merged, settings)
    if (
        settings.strip_targeted_fields
        and not replaced.intersection(n.lower() for n in settings.targeted_fields)
        and entry.cc != parse_cache_control(entry.fields.get("cache-control"))
    ):
        # The stored policy came from a targeted field this tier does not keep, and the
        # 304 did not repeat it (a 304 need not): that policy still applies (RFC 9213).
        cc = entry.cc
        drop = cc.private_fields | cc.no_cache_fields
        if drop:
            kept = [(n, v) for n, v in kept if n.lower() not in drop]
            fields = combine(kept)
        policy_fields = {k: v for k, v in fields.items() if k != "expires"}
    timing = _timing(
        entry.status, policy_fields, cc, headers, date_value, request_time, response_time, settings
    )
    fresh = StoredResponse(
        key=entry.key,
        host=entry.host,
        status=entry.status,
        reason=entry.reason,
        headers=kept,
        fields=fields,
        body=entry.body,
        cc=cc,
        freshness=timing,
        vary_names=entry.vary_names,
        vary_key=entry.vary_key,
        surrogate_keys=entry.surrogate_keys,
        etag=fields.get("etag"),
        last_modified=fields.get("last-modified"),
    )
    fresh.head = serialize_head(entry.status, entry.reason, kept, len(entry.body), via)
    return fresh
