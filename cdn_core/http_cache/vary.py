"""Secondary cache keys from ``Vary`` (RFC 9111 4.1).

A stored response is reused only when every field it names in ``Vary`` matches the new
request after normalisation; ``Vary: *`` never matches. Normalising ``Accept-Encoding``
(4.1 allows it) keeps the variant count small: only the codings we know, with q > 0,
sorted.
"""

from __future__ import annotations

from cdn_core.http_cache import Fields
from cdn_core.http_cache.cache_control import split_list

KNOWN_CODINGS = ("br", "gzip", "zstd", "deflate")

VaryKey = tuple[tuple[str, str], ...]


def vary_fields(vary_value: str | None) -> tuple[str, ...] | None:
    """Lower-case field names listed in ``Vary``, sorted and deduplicated; ``None`` for
    ``Vary: *``; ``()`` when absent."""
    if not vary_value:
        return ()
    names = {v.strip().lower() for v in vary_value.split(",") if v.strip()}
    if "*" in names:
        return None
    return tuple(sorted(names))


def _qvalue(params: list[str]) -> float:
    for p in params:
        k, _, v = p.strip().partition("=")
        if k.strip().lower() == "q":
            try:
                return float(v.strip())
            except ValueError:
                return 0.0
    return 1.0


def accepted_codings(value: str | None) -> frozenset[str]:
    """The known content codings (``br``, ``gzip``, ``zstd``, ``deflate``) a client
    accepts per RFC 9110 12.5.3, honouring ``q=0`` and ``*``."""
    if not value:
        return frozenset()
    explicit: dict[str, float] = {}
    star: float | None = None
    for member in split_list(value):
        name, *params = member.split(";")
        name = name.strip().lower()
        q = _qvalue(params)
        if name == "*":
            star = q
        elif name == "x-gzip":
            explicit["gzip"] = q
        else:
            explicit[name] = q
    out = {c for c, q in explicit.items() if c in KNOWN_CODINGS and q > 0}
    if star is not None and star > 0:
        out.update(c for c in KNOWN_CODINGS if c not in explicit)
    return frozenset(out)


def normalize(name: str, value: str | None) -> str:
    """Normalised value of request field ``name`` for variant matching."""
    if value is None:
        return ""
    if name == "accept-encoding":
        return ",".join(sorted(accepted_codings(value)))
    return " ".join(value.split())


def secondary_key(names: tuple[str, ...], request_fields: Fields) -> VaryKey:
    """The secondary cache key: ``((field, normalised value), ...)`` for ``names``."""
    return tuple((n, normalize(n, request_fields.get(n))) for n in names)
