"""The origin over HTTP (aiohttp test server on loopback): validators and per-path
headers, conditional requests (RFC 9110 13), ranges (RFC 9110 14)."""

from __future__ import annotations

import pytest
from originharness import CSS, INDEX, MTIME, etag_of, start

from origin.handler import http_date

# --- 200 responses and per-path headers ---------------------------------------------


async def test_get_sends_validators_and_rule_headers(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/index.html")
    assert resp.status == 200
    assert await resp.read() == INDEX
    h = resp.headers
    assert h["ETag"].startswith('"') and h["ETag"].endswith('"')  # strong (RFC 9110 8.8.3)
    assert h["Last-Modified"] == http_date(MTIME)
    assert h["Content-Type"] == "text/html; charset=utf-8"
    assert h["Content-Length"] == str(len(INDEX))
    assert h["Accept-Ranges"] == "bytes"
    assert "Date" in h
    assert h["Cache-Control"].startswith("public, max-age=60")
    assert h["Surrogate-Key"] == "html site"
    assert "Content-Encoding" not in h


@pytest.mark.parametrize(
    ("path", "cache_control", "surrogate_key", "content_type"),
    [
        ("/css/site.css", "public, max-age=3600", "css site", "text/css; charset=utf-8"),
        ("/images/a.jpg", "public, max-age=86400", "images site", "image/jpeg"),
        ("/robots.txt", "public, max-age=300", "site", "text/plain; charset=utf-8"),
        ("/sub/index.html", None, "html site", "text/html; charset=utf-8"),
    ],
)
async def test_cache_control_and_surrogate_key_follow_the_rules(
    aiohttp_client, site, path, cache_control, surrogate_key, content_type
):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get(path)
    assert resp.status == 200
    if cache_control is not None:
        assert resp.headers["Cache-Control"] == cache_control
    assert resp.headers["Surrogate-Key"] == surrogate_key
    assert resp.headers["Content-Type"] == content_type


async def test_custom_rules_first_cache_control_wins_and_keys_accumulate(aiohttp_client, site):
    rules = [
        {"match": "/css/*", "surrogate_keys": ["style"]},  # no cache_control: falls through
        {"match": "*.css", "cache_control": "max-age=5", "surrogate_keys": ["style", "x"]},
        {"match": "*", "cache_control": "no-store"},
    ]
    client, _ = await start(aiohttp_client, site, cache_rules=rules)
    resp = await client.get("/css/site.css")
    assert resp.headers["Cache-Control"] == "max-age=5"
    assert resp.headers["Surrogate-Key"] == "style x"
    resp = await client.get("/robots.txt")
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Surrogate-Key" not in resp.headers


async def test_root_and_directories_serve_their_index(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    root = await client.get("/")
    index = await client.get("/index.html")
    assert await root.read() == INDEX
    assert root.headers["ETag"] == index.headers["ETag"]
    sub = await client.get("/sub/")
    assert sub.status == 200 and b"sub" in await sub.read()
    redirect = await client.get("/sub?x=1", allow_redirects=False)
    assert redirect.status == 301
    assert redirect.headers["Location"] == "/sub/?x=1"
    assert (await client.get("/nodir/")).status == 404  # no listing without an index
    assert (await client.get("/index.html/")).status == 404


async def test_head_has_the_get_headers_and_no_body(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    get = await client.get("/css/site.css")
    head = await client.head("/css/site.css")
    assert head.status == 200
    assert await head.read() == b""
    for name in (
        "ETag",
        "Last-Modified",
        "Content-Type",
        "Content-Length",
        "Cache-Control",
        "Surrogate-Key",
        "Accept-Ranges",
    ):
        assert head.headers[name] == get.headers[name], name


async def test_empty_file(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/empty.txt", headers={"Range": "bytes=0-0"})
    assert resp.status == 200  # no range of an empty representation can be expressed
    assert resp.headers["Content-Length"] == "0"
    assert await resp.read() == b""


# --- conditional requests (RFC 9110 13) -----------------------------------------------


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"nope", {etag}', '"a",W/"b" , W/{etag}', "*"],
    ids=["exact", "weak-form", "list", "list-weak", "star"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_if_none_match_weak_comparison_gives_304(aiohttp_client, site, if_none_match, method):
    """RFC 9110 13.1.2: weak comparison; a match on GET/HEAD answers 304."""
    client, _ = await start(aiohttp_client, site)
    etag = await etag_of(client)
    resp = await client.request(
        method, "/index.html", headers={"If-None-Match": if_none_match.format(etag=etag)}
    )
    assert resp.status == 304
    assert await resp.read() == b""
    # RFC 9110 15.4.5: the 304 carries what a 200 would for caches to update.
    assert resp.headers["ETag"] == etag
    assert resp.headers["Cache-Control"].startswith("public, max-age=60")
    assert resp.headers["Surrogate-Key"] == "html site"
    assert "Date" in resp.headers


async def test_if_none_match_mismatch_gives_200(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/index.html", headers={"If-None-Match": '"other", W/"x"'})
    assert resp.status == 200
    assert await resp.read() == INDEX


async def test_if_none_match_spread_over_two_field_lines(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    etag = await etag_of(client)
    headers = [("If-None-Match", '"other"'), ("If-None-Match", etag)]
    resp = await client.get("/index.html", headers=headers)
    assert resp.status == 304


@pytest.mark.parametrize(
    ("ims", "status"),
    [
        (http_date(MTIME), 304),
        (http_date(MTIME + 3600), 304),
        (http_date(MTIME - 1), 200),
        ("not a date", 200),
    ],
)
async def test_if_modified_since(aiohttp_client, site, ims, status):
    """RFC 9110 13.1.3: 304 when not modified since; an invalid date is ignored."""
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/index.html", headers={"If-Modified-Since": ims})
    assert resp.status == status


async def test_if_modified_since_is_ignored_with_if_none_match(aiohttp_client, site):
    """RFC 9110 13.1.3: a recipient MUST ignore If-Modified-Since with If-None-Match."""
    client, _ = await start(aiohttp_client, site)
    headers = {"If-None-Match": '"other"', "If-Modified-Since": http_date(MTIME + 3600)}
    resp = await client.get("/index.html", headers=headers)
    assert resp.status == 200


@pytest.mark.parametrize(
    ("if_match", "status"),
    [("{etag}", 200), ("*", 200), ('"nope", {etag}', 200), ('"nope"', 412), ("W/{etag}", 412)],
    ids=["exact", "star", "list", "mismatch", "weak-never-matches"],
)
async def test_if_match_strong_comparison(aiohttp_client, site, if_match, status):
    """RFC 9110 13.1.1: strong comparison; a false condition answers 412."""
    client, _ = await start(aiohttp_client, site)
    etag = await etag_of(client)
    resp = await client.get("/index.html", headers={"If-Match": if_match.format(etag=etag)})
    assert resp.status == status


@pytest.mark.parametrize(("delta", "status"), [(-1, 412), (0, 200), (60, 200)])
async def test_if_unmodified_since(aiohttp_client, site, delta, status):
    """RFC 9110 13.1.4: 412 when modified after the given date."""
    client, _ = await start(aiohttp_client, site)
    ius = http_date(MTIME + delta)
    resp = await client.get("/index.html", headers={"If-Unmodified-Since": ius})
    assert resp.status == status


async def test_if_match_is_evaluated_before_if_none_match(aiohttp_client, site):
    """RFC 9110 13.2.2: step 1 (If-Match) fails before step 3 could answer 304."""
    client, _ = await start(aiohttp_client, site)
    etag = await etag_of(client)
    resp = await client.get("/index.html", headers={"If-Match": '"nope"', "If-None-Match": etag})
    assert resp.status == 412


# --- ranges (RFC 9110 14) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [("bytes=0-9", 0, 9), ("bytes=-5", len(CSS) - 5, len(CSS) - 1), ("bytes=100-", 100, None)],
    ids=["int-range", "suffix", "open-ended"],
)
async def test_single_range_gives_206(aiohttp_client, site, spec, first, last):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/css/site.css", headers={"Range": spec})
    last = len(CSS) - 1 if last is None else last
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{len(CSS)}"
    assert resp.headers["Content-Length"] == str(last - first + 1)
    assert await resp.read() == CSS[first : last + 1]


async def test_range_past_the_end_is_clamped(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/css/site.css", headers={"Range": "bytes=200-99999999"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 200-{len(CSS) - 1}/{len(CSS)}"


@pytest.mark.parametrize("spec", [f"bytes={len(CSS)}-", "bytes=99999-100000", "bytes=-0"])
async def test_unsatisfiable_range_gives_416(aiohttp_client, site, spec):
    """RFC 9110 15.5.17: 416 with Content-Range: bytes */length."""
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/css/site.css", headers={"Range": spec})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(CSS)}"


@pytest.mark.parametrize(
    "spec", ["bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=x-y", "bytes=" + "9" * 5000]
)
async def test_ignored_ranges_give_the_full_200(aiohttp_client, site, spec):
    """RFC 9110 14.2: invalid or unsupported (multi-range) Range may be ignored."""
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/css/site.css", headers={"Range": spec})
    assert resp.status == 200
    assert await resp.read() == CSS


async def test_range_is_ignored_on_head(aiohttp_client, site):
    """RFC 9110 14.2: Range is defined for GET only."""
    client, _ = await start(aiohttp_client, site)
    resp = await client.head("/css/site.css", headers={"Range": "bytes=0-9"})
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(len(CSS))


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        ("{etag}", 206),
        ('"stale"', 200),
        ("W/{etag}", 200),  # a weak tag never matches in If-Range
        (http_date(MTIME), 206),
        (http_date(MTIME + 60), 200),  # a date must match exactly
    ],
)
async def test_if_range(aiohttp_client, site, if_range, status):
    """RFC 9110 13.1.5: only a strong match of the current validator keeps the Range."""
    client, _ = await start(aiohttp_client, site)
    etag = await etag_of(client, "/css/site.css")
    headers = {"Range": "bytes=0-9", "If-Range": if_range.format(etag=etag)}
    resp = await client.get("/css/site.css", headers=headers)
    assert resp.status == status
    assert await resp.read() == (CSS[:10] if status == 206 else CSS)


# --- synthetic objects (trace replay, issue 23) -----------------------------------------


async def test_synthetic_objects_have_their_size_validators_and_ranges(aiohttp_client, site):
    from origin import synthetic
    from origin.config import SyntheticObjects

    client, _ = await start(aiohttp_client, site, synthetic=SyntheticObjects())
    resp = await client.get("/obj/99/150000")
    body = await resp.read()
    assert resp.status == 200 and len(body) == 150_000
    assert body == b"".join(synthetic.slices("99", 0, 150_000, 1 << 20))
    assert resp.headers["ETag"] == synthetic.etag("99", 150_000)
    assert resp.headers["Cache-Control"] == "public, max-age=86400"
    again = await client.get("/obj/99/150000", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    part = await client.get("/obj/99/150000", headers={"Range": "bytes=100000-100009"})
    assert part.status == 206 and await part.read() == body[100_000:100_010]
    head = await client.head("/obj/99/150000")
    assert head.status == 200 and head.headers["Content-Length"] == "150000"
    assert (await client.get("/obj/99/2000000000")).status == 404  # past max_size
    assert (await client.get("/index.html")).status == 200  # files still served


async def test_synthetic_objects_are_off_by_default(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    assert (await client.get("/obj/99/100")).status == 404
