"""Cache keys of a service: scheme, host and path, the query string as the service's
:class:`~cdn_core.services.model.QueryKey` says, the service's name (so two services
never share an object, even when a domain moves from one to another), and the request
fields and cookies it names (a secondary key of the service's choosing, like Fastly's
``req.hash`` additions or CloudFront's cache policy).

Changing a cache-key rule makes new keys: objects under the old keys are never served
again and age out (activation never purges).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from cdn_core.services.model import CacheKey
from cdn_core.store.protocol import KEY_SEPARATOR

SEPARATOR = KEY_SEPARATOR


@dataclass(frozen=True, slots=True)
class KeyRule:
    """A compiled :class:`~cdn_core.services.model.CacheKey`."""

    query_mode: str
    names: re.Pattern[str] | None
    headers: tuple[str, ...]
    cookies: frozenset[str]

    @classmethod
    def compile(cls, key: CacheKey) -> KeyRule:
        names = None
        if key.query.names:
            names = re.compile("|".join(f"(?:{fnmatch.translate(n)})" for n in key.query.names))
        return cls(key.query.mode, names, tuple(h.lower() for h in key.headers),
                   frozenset(key.cookies))

    def query(self, query: str) -> str:
        """The query string as it enters the key (``a=1&b=2``; empty for none).
        Parameter names are compared as sent (percent-encoded), values are kept."""
        if not query or self.query_mode == "whole":
            return query
        if self.query_mode == "ignore":
            return ""
        params = [p for p in query.split("&") if p]
        if self.names is not None:
            keep = self.query_mode == "allow"
            params = [p for p in params if bool(self.names.match(p.split("=", 1)[0])) == keep]
        if self.query_mode == "sorted":
            params.sort(key=lambda p: p.split("=", 1)[0])  # stable: repeated names keep order
        return "&".join(params)

    def unkeyed(self, query: str) -> list[str]:
        """Values of the parameters of ``query`` that :meth:`query` leaves out of the key
        (as sent, percent-encoded): request values a response may reflect without them
        keying it (:func:`cdn_core.node.exchange.sanitize.reflection_probes`)."""
        if not query or self.query_mode in ("whole", "sorted"):
            return []
        params = [p for p in query.split("&") if p]
        if self.query_mode != "ignore" and self.names is not None:
            keep = self.query_mode == "allow"
            params = [p for p in params if bool(self.names.match(p.split("=", 1)[0])) != keep]
        return [p.partition("=")[2] for p in params]

    def secondary(self, field: Callable[[str], str | None]) -> str:
        """The named request fields and cookies, as a key suffix (empty for none).
        ``field(name)`` gives a request field's combined value or None (lower-case name)."""
        if not self.headers and not self.cookies:
            return ""
        parts = [f"{name}={field(name) or ''}" for name in self.headers]
        if self.cookies:
            jar = _cookies(field("cookie") or "")
            parts += [f"cookie:{name}={jar.get(name, '')}" for name in sorted(self.cookies)]
        return SEPARATOR + SEPARATOR.join(parts)


def _cookies(header: str) -> dict[str, str]:
    """``Cookie`` (RFC 6265 5.4: ``a=1; b=2``) as a mapping; the first of a repeated name
    wins, as most servers read it."""
    out: dict[str, str] = {}
    for pair in header.split(";"):
        name, eq, value = pair.strip().partition("=")
        if eq and name and name not in out:
            out[name] = value
    return out


def service_key(service: str, scheme: str, host: str, path: str, query: str,
                rule: KeyRule) -> str:
    """The cache key of a request to ``service`` before its secondary part
    (:meth:`KeyRule.secondary`, appended when the rule keys on fields or cookies):
    ``scheme://host path[?query] SEP service``. The URL comes first so that prefix and
    host purges work on service keys as on plain ones, and a URL purge reaches every key
    that starts with the URL and :data:`SEPARATOR` (``cdn_core.store.PurgeSelector``).
    ``host`` and the path are expected in normal form (:mod:`cdn_core.node.exchange.keys`)."""
    return f"{key_url(scheme, host, path, query, rule)}{SEPARATOR}{service}"


def key_url(scheme: str, host: str, path: str, query: str, rule: KeyRule) -> str:
    """The URL part of a service key: the query as ``rule`` keeps it (what a URL purge of
    the service is turned into, so ``?utm_source=x`` reaches the key without it)."""
    q = rule.query(query)
    return f"{scheme}://{host}{path}?{q}" if q else f"{scheme}://{host}{path}"
