"""Byte ranges served from a complete stored representation (RFC 9110 14)."""

from __future__ import annotations

from cdn_core.http_cache import Fields
from cdn_core.http_cache.conditional import strong_match
from cdn_core.http_cache.dates import parse_http_date

UNSATISFIABLE = "unsatisfiable"


def parse_range(value: str, length: int) -> list[tuple[int, int]] | str | None:
    """Parse a ``Range`` value against a representation of ``length`` bytes.

    Returns inclusive ``(first, last)`` pairs for the satisfiable ranges,
    :data:`UNSATISFIABLE` when none is (416, RFC 9110 15.5.17), or ``None`` when the field
    is not a valid ``bytes`` range set and must be ignored (14.2).
    """
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    out: list[tuple[int, int]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first_s, dash, last_s = part.partition("-")
        first_s, last_s = first_s.strip(), last_s.strip()
        if not dash or (first_s and not first_s.isdigit()) or (last_s and not last_s.isdigit()):
            return None
        if not first_s:
            if not last_s:
                return None
            suffix = int(last_s)
            if suffix == 0:
                continue
            out.append((max(0, length - suffix), length - 1))
            continue
        first = int(first_s)
        if last_s and int(last_s) < first:
            return None  # invalid range-spec: the whole field is ignored (14.1.1)
        if first >= length:
            continue
        last = int(last_s) if last_s else length - 1
        out.append((first, min(last, length - 1)))
    if not out:
        return UNSATISFIABLE
    return out


def if_range_allows(request_fields: Fields, *, etag: str | None, last_modified: str | None) -> bool:
    """RFC 9110 13.1.5: the range applies only when ``If-Range`` (if any) matches the stored
    validator strongly (an entity-tag) or exactly (a date, which must be a strong one)."""
    value = request_fields.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return etag is not None and strong_match(value, etag)
    lm = parse_http_date(last_modified)
    return lm is not None and parse_http_date(value) == lm
