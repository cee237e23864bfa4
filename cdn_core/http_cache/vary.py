"""Secondary cache keys from ``Vary`` (RFC 9111 4.1).

A stored response is reused only when every field it names in ``Vary`` matches the new
request after normalisation; ``Vary: *`` never matches. A field absent from a request
matches only requests where it is absent too (4.1), so an absent field normalises to
``None``, never to the empty string an empty field gives. Other normalisations (4.1
allows them): ``Accept-Encoding`` reduced to the codings we know with q > 0, sorted (this
keeps the variant count small); any other field with runs of whitespace collapsed and the
whitespace around list commas dropped (RFC 9110 5.6.1: it is not significant).
"""

from __future__ import annotations

from cdn_core.http_cache import Fields
from cdn_core.http_cache.cache_control import split_list

KNOWN_CODINGS = ("br", "gzip", "zstd", "deflate")

VaryKey = tuple[tuple[str, str | None], ...]


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


_ALIASES = {"x-gzip": "gzip", "x-compress": "compress"}


def coding_qvalues(value: str | None) -> dict[str, float]:
    """Every content coding an ``Accept-Encoding`` value names, lower-cased, with its
    qvalue (RFC 9110 12.5.3, 12.4.2): ``identity`` and ``*`` included, ``x-gzip`` and
    ``x-compress`` read as ``gzip`` and ``compress`` (RFC 9110 8.4.1). A qvalue that does
    not parse counts as 0; a coding named twice keeps its last qvalue."""
    out: dict[str, float] = {}
    if not value:
        return out
    for member in split_list(value):
        name, *params = member.split(";")
        name = name.strip().lower()
        if not name:
            continue
        out[_ALIASES.get(name, name)] = _qvalue(params)
    return out


def accepted_codings(value: str | None) -> frozenset[str]:
    """The known content codings (``br``, ``gzip``, ``zstd``, ``deflate``) a client
    accepts per RFC 9110 12.5.3, honouring ``q=0`` and ``*``."""
    explicit = coding_qvalues(value)
    star = explicit.pop("*", None)
    out = {c for c, q in explicit.items() if c in KNOWN_CODINGS and q > 0}
    if star is not None and star > 0:
        out.update(c for c in KNOWN_CODINGS if c not in explicit)
    return frozenset(out)


def normalize(name: str, value: str | None) -> str | None:
    """Normalised value of request field ``name`` for variant matching; ``None`` when the
    field is absent."""
    if value is None:
        return None
    if name == "accept-encoding":
        return ",".join(sorted(accepted_codings(value)))
    return ",".join(" ".join(part.split()) for part in value.split(","))


def secondary_key(names: tuple[str, ...], request_fields: Fields) -> VaryKey:
    """The secondary cache key: ``((field, normalised value), ...)`` for ``names``."""
    return tuple((n, normalize(n, request_fields.get(n))) for n in names)
