"""Proactive negotiation (RFC 9110 12.1): which content coding and which image format to
send. Pure functions of the request's field values and what is available.

Content codings (RFC 9110 12.5.3), parsed by
:func:`cdn_core.http_cache.vary.coding_qvalues`:

- No ``Accept-Encoding``: identity (our policy; the RFC would allow any coding).
- A coding with ``q=0`` is never chosen; a coding not named takes the ``*`` qvalue, or
  is unacceptable when there is no ``*``.
- ``identity`` is acceptable unless ``identity;q=0``, or ``*;q=0`` with no entry for
  identity. When not named it ranks below every coding the client names.
- The highest qvalue wins; among equal qvalues the smallest body (known sizes) or the
  coding expected to be smallest (``br`` < ``zstd`` < ``gzip`` < ``deflate`` < identity).
- Nothing acceptable: :data:`NOT_ACCEPTABLE` (406, RFC 9110 15.5.7).

Image formats (``Accept``, RFC 9110 12.5.1): AVIF and WebP are chosen only when the
client names them (``image/avif``, ``image/webp``) with q > 0. Wildcards (``image/*``,
``*/*``) count for the original format only: old browsers send ``image/*`` without
decoding WebP, so a wildcard is no evidence of support.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdn_core.http_cache.cache_control import split_list
from cdn_core.http_cache.vary import coding_qvalues

IDENTITY = "identity"
NOT_ACCEPTABLE = None
# Ranking of codings by expected size, smallest first.
CODING_RANK = {"br": 0, "zstd": 1, "gzip": 2, "deflate": 3, "compress": 4, IDENTITY: 9}
# identity when not named: acceptable, below any coding the client names (RFC 9110 12.5.3).
IMPLICIT_IDENTITY_Q = 0.0005


def _clamp(q: float) -> float:
    if math.isnan(q) or q <= 0:
        return 0.0
    return min(q, 1.0)


@dataclass(frozen=True, slots=True)
class CodingPrefs:
    """A parsed ``Accept-Encoding``: qvalues by coding, ``star`` for ``*``, ``present``
    false when the request had no such field."""

    qvalues: Mapping[str, float]
    star: float | None
    present: bool

    def q(self, coding: str) -> float:
        """The client's qvalue for ``coding`` (0 = unacceptable)."""
        if not self.present:
            return 1.0 if coding == IDENTITY else 0.0
        if coding in self.qvalues:
            return self.qvalues[coding]
        if self.star is not None:
            return self.star
        return IMPLICIT_IDENTITY_Q if coding == IDENTITY else 0.0

    def accepts(self, coding: str) -> bool:
        return self.q(coding) > 0


def coding_prefs(accept_encoding: str | None) -> CodingPrefs:
    """Parse an ``Accept-Encoding`` value (``None`` when the field is absent)."""
    if accept_encoding is None:
        return CodingPrefs({}, None, False)
    raw = {c: _clamp(q) for c, q in coding_qvalues(accept_encoding).items()}
    star = raw.pop("*", None)
    return CodingPrefs(raw, star, True)


def rank_codings(
    prefs: CodingPrefs, available: Mapping[str, int | None], *, prefer: frozenset[str] = frozenset()
) -> list[str]:
    """The acceptable codings among ``available`` (coding -> body size, ``None`` while not
    yet produced), best first. ``prefer`` lists codings the client already holds a current
    copy of (from ``If-None-Match``): among acceptable ones they go first, so that a
    conditional request is answered 304 rather than with another encoding."""
    ok = [(c, prefs.q(c)) for c in available if prefs.q(c) > 0]
    if not ok:
        return []
    sizes_known = all(available[c] is not None for c, _ in ok)

    def key(item: tuple[str, float]) -> tuple[int, float, float, int]:
        c, q = item
        size = available[c]
        by_size = float(size) if sizes_known and size is not None else 0.0
        return (0 if c in prefer else 1, -q, by_size, CODING_RANK.get(c, 8))

    return [c for c, _ in sorted(ok, key=key)]


def choose_coding(
    prefs: CodingPrefs, available: Mapping[str, int | None], *, prefer: frozenset[str] = frozenset()
) -> str | None:
    """The coding to send, or :data:`NOT_ACCEPTABLE` (``None``) for 406."""
    ranked = rank_codings(prefs, available, prefer=prefer)
    return ranked[0] if ranked else NOT_ACCEPTABLE


# Image formats -------------------------------------------------------------------------

FORMAT_MEDIA_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
}


@dataclass(frozen=True, slots=True)
class MediaPrefs:
    """A parsed ``Accept``: ``(type, subtype) -> q`` (wildcards as ``*``)."""

    ranges: Mapping[tuple[str, str], float]
    present: bool

    def explicit_q(self, media_type: str) -> float:
        """The qvalue of an exact ``type/subtype`` entry (0 when not named)."""
        t, _, s = media_type.partition("/")
        return self.ranges.get((t, s), 0.0)

    def q(self, media_type: str) -> float:
        """The qvalue of the most specific matching range (RFC 9110 12.5.1)."""
        if not self.present:
            return 1.0
        t, _, s = media_type.partition("/")
        for k in ((t, s), (t, "*"), ("*", "*")):
            if k in self.ranges:
                return self.ranges[k]
        return 0.0


def media_prefs(accept: str | None) -> MediaPrefs:
    """Parse an ``Accept`` value (``None`` when absent); media-type parameters other than
    ``q`` are ignored."""
    if accept is None:
        return MediaPrefs({}, False)
    out: dict[tuple[str, str], float] = {}
    for member in split_list(accept):
        name, *params = member.split(";")
        t, slash, s = name.strip().lower().partition("/")
        if not slash or not t or not s:
            continue
        q = 1.0
        for p in params:
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = _clamp(float(v.strip()))
                except ValueError:
                    q = 0.0
                break
        key = (t, s)
        out[key] = max(q, out.get(key, 0.0)) if key in out else q
    return MediaPrefs(out, True)


def rank_image_formats(prefs: MediaPrefs, original: str, candidates: Sequence[str]) -> list[str]:
    """Formats to try for an image whose format is ``original``, best first; always ends
    with ``original`` (images are sent in their own format rather than answered 406).

    ``candidates`` are the formats this node can produce, in the operator's order of
    preference, which breaks qvalue ties.
    """
    ranked: list[tuple[float, int, str]] = []
    for i, fmt in enumerate(candidates):
        if fmt == original:
            continue
        q = prefs.explicit_q(FORMAT_MEDIA_TYPES[fmt])
        if q > 0:
            ranked.append((q, i, fmt))
    q_orig = prefs.q(FORMAT_MEDIA_TYPES[original])
    ranked.sort(key=lambda r: (-r[0], r[1]))
    out = [fmt for q, _, fmt in ranked if q >= q_orig or q_orig == 0]
    out.append(original)
    return out
