"""Compressed variants: which responses (RFC 9110 8.4, RFC 9111 5.2.2.6 no-transform),
encoders, variant headers (Content-Encoding, Vary 12.5.5) and entity-tags (8.8.3,
13.1.2). Pure: no event loop."""

import gzip
import zlib

import brotli
import pytest

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.conditional import evaluate
from cdn_core.optimize.compress import (
    EncodeError,
    available_codings,
    content_codings,
    decode,
    encoder,
    media_type,
    merge_vary,
    variant_headers,
    why_not_compressible,
)
from cdn_core.optimize.etag import (
    held_labels,
    identity_etag,
    split_variant_etag,
    to_identity_tags,
    variant_etag,
)
from cdn_core.optimize.settings import CompressionSettings

S = CompressionSettings()


def why(ctype="text/html; charset=utf-8", *, status=200, size=5000, cc="", **extra):
    fields = {"content-type": ctype, **{k.replace("_", "-"): v for k, v in extra.items()}}
    if ctype is None:
        del fields["content-type"]
    return why_not_compressible(
        status=status, fields=fields, cc=parse_cache_control(cc), size=size, settings=S
    )


@pytest.mark.parametrize(
    "ctype",
    [
        "text/html; charset=utf-8",
        "TEXT/CSS",
        "text/plain",
        "text/javascript",
        "application/javascript",
        "application/json",
        "application/ld+json",
        "application/manifest+json",
        "application/xml",
        "application/rss+xml",
        "image/svg+xml",
        "font/ttf",
        "font/otf",
    ],
)
def test_compressible_types(ctype):
    assert why(ctype) is None


@pytest.mark.parametrize(
    "ctype",
    [
        "font/woff2",
        "font/woff",
        "application/font-woff",
        "image/jpeg",
        "image/png",
        "image/webp",
        "video/mp4",
        "application/zip",
        "application/gzip",
        "application/octet-stream",
        None,
    ],
)
def test_already_compressed_or_unknown_types_are_not(ctype):
    assert why(ctype) == "type"


def test_8_4_already_encoded_bodies_are_never_compressed_again():
    assert why(content_encoding="gzip") == "encoded"
    assert why(content_encoding="br") == "encoded"
    assert why(content_encoding="identity") is None


def test_5_2_2_6_no_transform():
    assert why(cc="public, max-age=60, no-transform") == "no-transform"


def test_15_3_7_ranges_and_statuses_other_than_200():
    assert why(status=206, content_range="bytes 0-9/100") == "status"
    assert why(content_range="bytes 0-9/100") == "range"
    for status in (203, 204, 301, 404, 500):
        assert why(status=status) == "status"


def test_size_bounds():
    assert why(size=S.min_bytes - 1) == "too-small"
    assert why(size=S.min_bytes) is None
    assert why(size=S.max_bytes + 1) == "too-large"


def test_media_type_and_codings_parsing():
    assert media_type(" Text/HTML ; charset=UTF-8") == "text/html"
    assert media_type(None) == ""
    assert content_codings("x-gzip") == ("gzip",)
    assert content_codings("identity") == ()
    assert content_codings("gzip, br") == ("gzip", "br")


# encoders
TEXT = b"<p>hello, compressible world</p>\n" * 200


def test_brotli_and_gzip_round_trip_and_shrink():
    br = encoder("br", S, len(TEXT))(TEXT)
    gz = encoder("gzip", S, len(TEXT))(TEXT)
    assert brotli.decompress(br) == TEXT
    assert gzip.decompress(gz) == TEXT
    assert len(br) < len(TEXT) and len(gz) < len(TEXT)
    assert "zstd" not in available_codings() or encoder("zstd", S, len(TEXT))(TEXT)


def test_gzip_is_deterministic_so_strong_etags_stay_true():
    e = encoder("gzip", S, len(TEXT))
    assert e(TEXT) == e(TEXT)
    assert e(TEXT)[4:8] == b"\0\0\0\0"  # mtime 0


def test_levels_are_configurable():
    fast = CompressionSettings(brotli_level=1, gzip_level=1)
    assert len(encoder("br", fast, len(TEXT))(TEXT)) >= len(encoder("br", S, len(TEXT))(TEXT))
    big = CompressionSettings(large_bytes=100, brotli_level=11, brotli_level_large=0)
    assert encoder("br", big, len(TEXT))(TEXT) == brotli.compress(
        TEXT, quality=0, mode=brotli.MODE_TEXT
    )


def test_decode_with_a_bomb_limit():
    assert decode("gzip", gzip.compress(TEXT), len(TEXT)) == TEXT
    assert decode("br", brotli.compress(TEXT), len(TEXT)) == TEXT
    assert decode("deflate", zlib.compress(TEXT), len(TEXT)) == TEXT
    bomb = gzip.compress(b"\0" * 10_000_000)
    with pytest.raises(EncodeError, match="exceeds"):
        decode("gzip", bomb, 1_000_000)
    with pytest.raises(EncodeError, match="exceeds"):
        decode("br", brotli.compress(b"\0" * 10_000_000), 1_000_000)
    with pytest.raises(EncodeError):
        decode("gzip", b"not gzip at all", 100)
    with pytest.raises(EncodeError, match="truncated"):
        decode("gzip", gzip.compress(TEXT)[:40], len(TEXT))


# variant headers
def test_12_5_5_vary_merged_once():
    assert merge_vary([("A", "1")], "Accept-Encoding") == [("A", "1"), ("Vary", "Accept-Encoding")]
    assert merge_vary([("Vary", "Origin"), ("Vary", "Cookie")], "Accept-Encoding") == [
        ("Vary", "Origin, Cookie, Accept-Encoding")
    ]
    same = [("vary", "origin, accept-encoding")]
    assert merge_vary(same, "Accept-Encoding") is same
    star = [("Vary", "*")]
    assert merge_vary(star, "Accept") is star


def test_variant_headers_for_a_br_variant():
    headers = [
        ("Content-Type", "text/css"),
        ("ETag", '"abc"'),
        ("Content-MD5", "xxx"),
        ("Repr-Digest", "sha-256=:x:"),
        ("Cache-Control", "max-age=60"),
        ("Vary", "Origin"),
    ]
    out = dict(
        variant_headers(
            headers, label="br", vary="Accept-Encoding", content_encoding="br", etag='"abc"'
        )
    )
    assert out == {
        "Content-Type": "text/css",
        "Cache-Control": "max-age=60",
        "Content-Encoding": "br",
        "ETag": '"abc-br"',
        "Vary": "Origin, Accept-Encoding",
    }


# entity-tags of variants (RFC 9110 8.8.3)
def test_8_8_3_variant_tags_differ_and_weak_stays_weak():
    assert variant_etag('"abc"', "br") == '"abc-br"'
    assert variant_etag('W/"abc"', "gzip") == 'W/"abc-gzip"'
    assert variant_etag('"abc"', "identity") == '"abc"'
    assert variant_etag(None, "br") is None
    assert variant_etag("abc", "br") is None  # malformed: the variant gets no tag
    assert variant_etag('""', "br") == '"-br"'


def test_variant_tags_map_back_to_the_identity_tag():
    labels = ("br", "gzip", "webp", "w320-webp")
    assert split_variant_etag('"abc-br"', labels) == ('"abc"', "br")
    assert split_variant_etag('W/"abc-gzip"', labels) == ('W/"abc"', "gzip")
    assert split_variant_etag('"abc-w320-webp"', labels) == ('"abc"', "w320-webp")
    assert split_variant_etag('"abc"', labels) == ('"abc"', "identity")
    assert identity_etag('"-br"', labels) == '"-br"'  # an empty opaque tag is no variant
    assert to_identity_tags('"a-br", "a-gzip", W/"b"', labels) == '"a", W/"b"'
    assert to_identity_tags("*", labels) == "*"


def test_13_1_2_conditional_requests_for_either_representation():
    codings = ("br", "gzip")
    tag = '"abc"'
    assert held_labels('"abc-br"', tag, codings) == {"br"}
    assert held_labels('"x", W/"abc-gzip"', tag, codings) == {"gzip"}  # weak comparison
    assert held_labels('"abc"', tag, codings) == {"identity"}
    assert held_labels('"abc-br"', '"other"', codings) == set()
    assert held_labels("*", tag, codings) == set()
    # the node evaluates the request against the chosen variant's tag
    br_tag = variant_etag(tag, "br")
    assert evaluate("GET", {"if-none-match": '"abc-br"'}, etag=br_tag, last_modified=None) == 304
    assert evaluate("GET", {"if-none-match": '"abc"'}, etag=br_tag, last_modified=None) is None
    # forwarded upstream, the variant's tag becomes the identity's, which the origin knows
    fwd = to_identity_tags('"abc-br"', codings)
    assert evaluate("GET", {"if-none-match": fwd}, etag=tag, last_modified=None) == 304
