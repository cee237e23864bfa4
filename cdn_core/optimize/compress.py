"""Compressed variants: which responses to compress, the encoders, and the headers of a
variant (RFC 9110 8.4 Content-Encoding, 8.6 Content-Length, 12.5.5 Vary, 8.8.3 ETag).

A response is compressed only when all of these hold (:func:`why_not_compressible`):
status 200 (so never a 206 or a range), no ``Content-Encoding`` other than identity (an
origin-compressed body is passed through, never compressed again), no ``Content-Range``,
no ``Cache-Control: no-transform`` (RFC 9111 5.2.2.6), a media type from the configured
list (text, JSON, JavaScript, SVG, XML, uncompressed fonts; never WOFF/WOFF2, images or
video), and a body between ``min_bytes`` and ``max_bytes``.

The encoders are pure ``bytes -> bytes`` functions run in the worker pool; zlib and
brotli release the GIL while they work (see :mod:`cdn_core.optimize.pool`).
"""

from __future__ import annotations

import fnmatch
import importlib
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import brotli

from cdn_core.errors import CdnError
from cdn_core.http_cache.cache_control import CacheControl
from cdn_core.optimize.etag import variant_etag
from cdn_core.optimize.settings import CompressionSettings

# Fields that describe the content bytes, wrong once the bytes change (RFC 9530 digests,
# RFC 1864 Content-MD5) and ones recomputed per variant.
CONTENT_BOUND = frozenset(
    {"content-md5", "digest", "content-digest", "repr-digest", "content-length", "etag"}
)


class EncodeError(CdnError):
    """A body could not be encoded or decoded (corrupt input, or a decoded body larger
    than the limit)."""


def _zstd_module() -> Any:
    """A maintained zstd binding if one is installed (``compression.zstd`` from Python
    3.14, else ``zstandard``); ``None`` otherwise."""
    for name in ("compression.zstd", "zstandard"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_ZSTD = _zstd_module()


def available_codings() -> frozenset[str]:
    """Codings this process can produce."""
    return frozenset({"br", "gzip"} | ({"zstd"} if _ZSTD is not None else set()))


# Which responses ----------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """``type/subtype`` in lower case, without parameters (``""`` when absent)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def content_codings(content_encoding: str | None) -> tuple[str, ...]:
    """The codings applied to a body, in order, ``identity`` dropped; ``x-gzip`` read as
    ``gzip`` (RFC 9110 8.4.1.3)."""
    if not content_encoding:
        return ()
    out = []
    for c in content_encoding.split(","):
        c = c.strip().lower()
        if c and c != "identity":
            out.append("gzip" if c == "x-gzip" else c)
    return tuple(out)


def type_matches(mtype: str, patterns: Iterable[str]) -> bool:
    """``mtype`` matches one of ``patterns`` (``text/*``, ``application/*+json``, exact)."""
    return bool(mtype) and any(fnmatch.fnmatchcase(mtype, p) for p in patterns)


def why_not_compressible(
    *,
    status: int,
    fields: dict[str, str],
    cc: CacheControl,
    size: int,
    settings: CompressionSettings,
) -> str | None:
    """``None`` when the response may be compressed, else the reason: ``status``,
    ``encoded``, ``range``, ``no-transform``, ``type``, ``too-small``, ``too-large``."""
    if status != 200:
        return "status"
    if content_codings(fields.get("content-encoding")):
        return "encoded"
    if "content-range" in fields:
        return "range"
    if cc.no_transform:
        return "no-transform"
    if not type_matches(media_type(fields.get("content-type")), settings.types):
        return "type"
    if size > settings.max_bytes:
        return "too-large"
    if size < settings.min_bytes:
        return "too-small"
    return None


# Encoders -----------------------------------------------------------------------------


def brotli_level(settings: CompressionSettings, size: int) -> int:
    return settings.brotli_level if size < settings.large_bytes else settings.brotli_level_large


def encoder(coding: str, settings: CompressionSettings, size: int) -> Callable[[bytes], bytes]:
    """A function encoding a body of about ``size`` bytes with ``coding``."""
    if coding == "br":
        mode = brotli.MODE_TEXT
        quality = brotli_level(settings, size)
        return lambda body: bytes(brotli.compress(body, mode=mode, quality=quality))
    if coding == "gzip":
        level = settings.gzip_level
        # wbits=31: a gzip member with mtime 0, so the same input gives the same bytes.
        return lambda body: zlib.compress(body, level, wbits=31)
    if coding == "zstd" and _ZSTD is not None:
        level = settings.zstd_level
        zstd = _ZSTD
        if zstd.__name__ == "zstandard":
            return lambda body: bytes(zstd.ZstdCompressor(level=level).compress(body))
        return lambda body: bytes(zstd.compress(body, level=level))
    raise ValueError(f"cannot encode {coding!r}")


def decode(coding: str, body: bytes, limit: int) -> bytes:
    """``body`` with content coding ``coding`` removed; at most ``limit`` bytes of output.

    Raises:
        EncodeError: unknown coding, corrupt data, or more than ``limit`` bytes (a
            compression bomb).
    """
    try:
        if coding in ("gzip", "deflate"):
            # 47: gzip or zlib header detected automatically; raw deflate for "deflate"
            # sent by servers that get it wrong is tried next.
            d = zlib.decompressobj(47 if coding == "gzip" else 15)
            try:
                out = d.decompress(body, limit + 1)
            except zlib.error:
                if coding != "deflate":
                    raise
                d = zlib.decompressobj(-15)
                out = d.decompress(body, limit + 1)
            if len(out) > limit:
                raise EncodeError(f"decoded {coding} body exceeds {limit} bytes")
            if not d.eof:
                raise EncodeError(f"truncated {coding} body")
            return out
        if coding == "br":
            dec = brotli.Decompressor()
            out = dec.process(body, output_buffer_limit=limit + 1)
            if len(out) > limit:
                raise EncodeError(f"decoded br body exceeds {limit} bytes")
            if not dec.is_finished():
                raise EncodeError("truncated br body")
            return bytes(out)
    except zlib.error as exc:
        raise EncodeError(f"corrupt {coding} body: {exc}") from exc
    except brotli.error as exc:
        raise EncodeError(f"corrupt br body: {exc}") from exc
    raise EncodeError(f"cannot decode {coding!r}")


DECODABLE = frozenset({"gzip", "deflate", "br"})


# Variant headers ----------------------------------------------------------------------


def merge_vary(headers: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """``headers`` with ``name`` listed in ``Vary`` (one merged line, origin's names kept
    first); unchanged when ``Vary`` already lists it or is ``*``."""
    names: list[str] = []
    rest: list[tuple[str, str]] = []
    for n, v in headers:
        if n.lower() == "vary":
            names.extend(x.strip() for x in v.split(",") if x.strip())
        else:
            rest.append((n, v))
    lowered = {x.lower() for x in names}
    if name.lower() in lowered or "*" in lowered:
        return headers
    return [*rest, ("Vary", ", ".join([*names, name]))]


def variant_headers(
    headers: list[tuple[str, str]],
    *,
    label: str,
    vary: str,
    content_encoding: str | None = None,
    content_type: str | None = None,
    etag: str | None,
) -> list[tuple[str, str]]:
    """Headers of variant ``label`` of a response with ``headers``: content-bound fields
    dropped, ``Content-Encoding`` set (or removed when ``None`` and decoding) and
    ``Content-Type`` replaced when given, ``vary`` merged into ``Vary``, and the variant's
    ``ETag`` (see :func:`~cdn_core.optimize.etag.variant_etag`).
    ``Content-Length`` is added when the head is serialised."""
    drop = set(CONTENT_BOUND) | {"content-encoding"}
    if content_type is not None:
        drop.add("content-type")
    out = [(n, v) for n, v in headers if n.lower() not in drop]
    if content_type is not None:
        out.append(("Content-Type", content_type))
    if content_encoding is not None:
        out.append(("Content-Encoding", content_encoding))
    tag = variant_etag(etag, label)
    if tag is not None:
        out.append(("ETag", tag))
    return merge_vary(out, vary)
