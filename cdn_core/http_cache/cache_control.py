"""Cache-Control parsing (RFC 9111 5.2).

Directive names are case-insensitive; arguments may be tokens or quoted strings (5.2:
recipients accept both). A directive that appears twice with different values, whose
delta-seconds are not a non-negative integer, or that has whitespace around its ``=``
(not the 5.2 syntax), makes the value *invalid*: RFC 9111 4.2.1 lets a cache treat such a
response as stale, which is what we do (``max_age=0``). Targeted fields (RFC 9213) have a
stricter syntax of their own: see :mod:`cdn_core.http_cache.targeted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

INVALID = -1  # sentinel for a delta-seconds directive whose value could not be used
# The unqualified no-cache/private forms, shared: a cache keeps one CacheControl per
# stored response, and each empty frozenset would be one more object for the cyclic
# garbage collector to walk (cdn_core.gc_schedule).
NO_FIELDS: frozenset[str] = frozenset()
# Values up to this many characters are parsed once and the (immutable) result shared:
# origins send a few distinct Cache-Control values for all their objects. Longer ones,
# which only a client would send, are parsed each time so none is kept.
MEMO_MAX_CHARS = 256


@dataclass(frozen=True, slots=True)
class CacheControl:
    """Parsed Cache-Control directives. Delta-seconds values are ``int`` seconds,
    ``None`` when absent, and ``0`` when present but invalid or conflicting.

    ``max_stale`` is ``float('inf')`` for a bare ``max-stale`` (any staleness accepted).
    ``no_cache_fields``/``private_fields`` hold lower-case field names of the qualified
    forms (RFC 9111 5.2.2.4, 5.2.2.7); ``no_cache``/``private`` are true only for the
    unqualified forms.
    """

    max_age: int | None = None
    s_maxage: int | None = None
    max_stale: float | None = None
    min_fresh: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    no_cache: bool = False
    no_cache_fields: frozenset[str] = NO_FIELDS
    no_store: bool = False
    no_transform: bool = False
    only_if_cached: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    must_understand: bool = False
    public: bool = False
    private: bool = False
    private_fields: frozenset[str] = NO_FIELDS
    immutable: bool = False


_DELTA = {
    "max-age": "max_age",
    "s-maxage": "s_maxage",
    "min-fresh": "min_fresh",
    "stale-while-revalidate": "stale_while_revalidate",
    "stale-if-error": "stale_if_error",
}
_FLAGS = {
    "no-store": "no_store",
    "no-transform": "no_transform",
    "only-if-cached": "only_if_cached",
    "must-revalidate": "must_revalidate",
    "proxy-revalidate": "proxy_revalidate",
    "must-understand": "must_understand",
    "public": "public",
    "immutable": "immutable",
}


def split_list(value: str) -> list[str]:
    """Split a comma-separated field value (RFC 9110 5.6.1), keeping commas inside quoted
    strings; empty members are dropped."""
    out: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            quoted = not quoted
        elif ch == "," and not quoted:
            item = "".join(buf).strip()
            if item:
                out.append(item)
            buf = []
        else:
            buf.append(ch)
    item = "".join(buf).strip()
    if item:
        out.append(item)
    return out


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def _delta_seconds(raw: str | None) -> int:
    # RFC 9111 1.2.2: delta-seconds is 1*DIGIT; a larger value than 2^31 is capped there.
    if raw is None:
        return INVALID
    raw = _unquote(raw)
    if not raw.isdigit():
        return INVALID
    return min(int(raw), 2**31)


def parse_cache_control(value: str | None) -> CacheControl:
    """Parse a (combined) Cache-Control field value; ``None`` or ``""`` gives defaults.
    Equal values give the same (frozen) object when short (:data:`MEMO_MAX_CHARS`)."""
    if not value:
        return _EMPTY
    if len(value) <= MEMO_MAX_CHARS:
        return _parse_memo(value)
    return _parse(value)


def _parse(value: str) -> CacheControl:
    deltas: dict[str, int] = {}
    flags: dict[str, bool] = {}
    no_cache: bool = False
    no_cache_fields: set[str] = set()
    private = False
    private_fields: set[str] = set()
    max_stale: float | None = None
    for item in split_list(value):
        raw_name, eq, arg = item.partition("=")
        name = raw_name.strip().lower()
        argv: str | None = arg.strip() if eq else None
        if name in _DELTA:
            attr = _DELTA[name]
            # 5.2: token "=" value with nothing around the "="; "max-age =60" or
            # "max-age= 60" is not the max-age directive, so it cannot make a response fresh.
            spaced = bool(eq) and (raw_name[-1:].isspace() or arg[:1].isspace())
            seconds = INVALID if spaced else _delta_seconds(argv)
            if attr in deltas and deltas[attr] != seconds:
                seconds = INVALID  # conflicting duplicates (RFC 9111 4.2.1)
            deltas[attr] = seconds
        elif name in _FLAGS:
            flags[_FLAGS[name]] = True
        elif name == "no-cache":
            if argv:
                no_cache_fields.update(
                    f.strip().lower() for f in _unquote(argv).split(",") if f.strip()
                )
            else:
                no_cache = True
        elif name == "private":
            if argv:
                private_fields.update(
                    f.strip().lower() for f in _unquote(argv).split(",") if f.strip()
                )
            else:
                private = True
        elif name == "max-stale":
            if argv is None:
                max_stale = float("inf")
            else:
                spaced = raw_name[-1:].isspace() or arg[:1].isspace()
                seconds = INVALID if spaced else _delta_seconds(argv)
                max_stale = None if seconds == INVALID else float(seconds)
    return CacheControl(
        **{k: (0 if v == INVALID else v) for k, v in deltas.items()},  # type: ignore[arg-type]
        **flags,
        max_stale=max_stale,
        no_cache=no_cache,
        no_cache_fields=frozenset(no_cache_fields) if no_cache_fields else NO_FIELDS,
        private=private,
        private_fields=frozenset(private_fields) if private_fields else NO_FIELDS,
    )


_parse_memo = lru_cache(maxsize=1024)(_parse)


_EMPTY = CacheControl()
