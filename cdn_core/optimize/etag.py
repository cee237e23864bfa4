"""Entity-tags of derived variants (RFC 9110 8.8.3).

A variant is a different representation, so it needs a different entity-tag:
``"abc"`` becomes ``"abc-br"`` (``W/"abc"`` becomes ``W/"abc-br"``: weak stays weak).
The label names the variant (``br``, ``gzip``, ``avif``, ``w320``, ``w320-webp``).

A client that stored a variant sends its tag back in ``If-None-Match``; these helpers
map such a tag to the identity tag and the variant label, so that the node can answer a
conditional request for either (and rewrite validators before they go upstream, where
only the identity tag is known).
"""

from __future__ import annotations

from collections.abc import Iterable

from cdn_core.http_cache.cache_control import split_list

IDENTITY_LABEL = "identity"


def _split(tag: str) -> tuple[str, str] | None:
    """``(prefix, opaque)`` for a well-formed entity-tag: prefix ``W/`` or ``""``, and the
    text between the quotes."""
    tag = tag.strip()
    prefix = ""
    if tag.startswith("W/"):
        prefix, tag = "W/", tag[2:]
    if len(tag) < 2 or tag[0] != '"' or tag[-1] != '"' or '"' in tag[1:-1]:
        return None
    return prefix, tag[1:-1]


def variant_etag(etag: str | None, label: str) -> str | None:
    """The tag of variant ``label`` of a response tagged ``etag``; ``None`` when the
    response has no (well-formed) tag."""
    if etag is None:
        return None
    parts = _split(etag)
    if parts is None:
        return None
    if label == IDENTITY_LABEL:
        return etag.strip()
    prefix, opaque = parts
    return f'{prefix}"{opaque}-{label}"'


def split_variant_etag(tag: str, labels: Iterable[str]) -> tuple[str, str]:
    """``(identity tag, label)`` for a tag produced by :func:`variant_etag` with one of
    ``labels``; ``(tag, "identity")`` when it names no known variant. The longest matching
    label wins (``w320-webp`` before ``webp``)."""
    parts = _split(tag)
    if parts is None:
        return tag.strip(), IDENTITY_LABEL
    prefix, opaque = parts
    for label in sorted(labels, key=len, reverse=True):
        suffix = "-" + label
        if label != IDENTITY_LABEL and opaque.endswith(suffix) and len(opaque) > len(suffix):
            return f'{prefix}"{opaque[: -len(suffix)]}"', label
    return tag.strip(), IDENTITY_LABEL


def identity_etag(tag: str, labels: Iterable[str]) -> str:
    """The identity tag a variant tag was derived from (see :func:`split_variant_etag`)."""
    return split_variant_etag(tag, labels)[0]


def to_identity_tags(value: str, labels: Iterable[str]) -> str:
    """An ``If-None-Match``/``If-Match`` value with every variant tag replaced by its
    identity tag (duplicates dropped), for a request forwarded to an upstream that knows
    only the identity; ``*`` stays ``*``."""
    if value.strip() == "*":
        return "*"
    labels = tuple(labels)
    out: list[str] = []
    for tag in split_list(value):
        base = identity_etag(tag, labels)
        if base not in out:
            out.append(base)
    return ", ".join(out)


def _opaque(tag: str) -> str:
    t = tag.strip()
    return t[2:] if t.startswith("W/") else t


def held_labels(
    if_none_match: str | None, etag: str | None, labels: Iterable[str]
) -> frozenset[str]:
    """Labels of the variants of the response tagged ``etag`` whose current tag the
    client lists in ``If-None-Match`` (weak comparison, RFC 9110 13.1.2);
    ``"identity"`` for the identity tag itself. Empty without a tag or for ``*``."""
    if not if_none_match or etag is None or if_none_match.strip() == "*":
        return frozenset()
    candidates = {IDENTITY_LABEL: etag, **{lb: variant_etag(etag, lb) for lb in labels}}
    sent = {_opaque(t) for t in split_list(if_none_match)}
    return frozenset(lb for lb, t in candidates.items() if t is not None and _opaque(t) in sent)
