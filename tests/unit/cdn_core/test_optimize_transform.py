"""The Transformer end to end on real content from examples/site: negotiated br/gzip
variants (case H05; RFC 9110 8.4, 12.5.3, 12.5.5, 13.1.2, 14; RFC 9111 5.2.2.6),
origin-compressed pass-through, the variant cache's life cycle, the pool's single
flight and back-pressure, and metrics (image variants: test_optimize_transform_images)."""

import asyncio
import gzip
import os
import threading

import pytest
from transformbench import (
    NOW,
    SITE,
    decoded,
    entry,
    head,
    req,
    serve,
    site_entry,
)

from cdn_core.http_cache.conditional import evaluate
from cdn_core.node.exchange.entries import refresh_from_304
from cdn_core.node.settings.cache import CacheSettings
from cdn_core.optimize.transform import NEEDS_ENCODING

TEXT_FILES = [
    ("js/app.js", "text/javascript; charset=utf-8"),
    ("css/site.css", "text/css"),
    ("index.html", "text/html; charset=utf-8"),
    ("gallery.html", "text/html; charset=utf-8"),
]


# H05: compressed variants go only to clients that accept them ---------------------------
@pytest.mark.parametrize(("rel", "ctype"), TEXT_FILES)
async def test_h05_rfc9110_12_5_3_each_client_gets_a_coding_it_accepts(transformer, rel, ctype):
    e = site_entry(rel, ctype)
    original = e.body
    cases = [
        ("gzip, deflate, br", "br"),
        ("gzip, deflate", "gzip"),
        (None, None),
        ("br;q=0, gzip", "gzip"),
    ]
    tags = set()
    for ae, coding in cases:
        resp = await serve(transformer, e, req("/" + rel, accept_encoding=ae))
        status, f = head(resp)
        assert status == 200
        assert f.get("content-encoding") == ([coding] if coding else None)
        assert f["vary"] == ["Accept-Encoding"]
        assert f["content-length"] == [str(len(resp.body))]
        assert decoded(resp) == original
        if coding:
            assert len(resp.body) < len(original)
        assert f["etag"] == [resp.etag]
        tags.add(resp.etag)
    assert tags == {'"v1-br"', '"v1-gzip"', '"v1"'}  # differs per coding, identity unchanged


async def test_h05_origin_that_negotiates_itself_keeps_one_vary(transformer):
    e = site_entry("js/app.js", "text/javascript", '"v1"', ("Vary", "Accept-Encoding"))
    resp = await serve(transformer, e, req(accept_encoding="gzip, deflate, br"))
    assert head(resp)[1]["vary"] == ["Accept-Encoding"]
    assert head(resp)[1]["content-encoding"] == ["br"]


async def test_12_5_5_an_existing_vary_is_merged(transformer):
    e = site_entry("js/app.js", "text/javascript", '"v1"', ("Vary", "Origin"))
    for ae in ("br", None):
        assert head(await serve(transformer, e, req(accept_encoding=ae)))[1]["vary"] == [
            "Origin, Accept-Encoding"
        ]


async def test_h05_origin_compressed_bodies_are_passed_through_never_recompressed(transformer):
    body = (SITE / "js/app.js").read_bytes()
    e = entry(
        "/js/app.js",
        gzip.compress(body),
        ("Content-Type", "text/javascript"),
        ("Content-Encoding", "gzip"),
        ("ETag", '"g1"'),
    )
    for ae in ("gzip, deflate, br", "br;q=0, gzip", "x-gzip"):
        resp = transformer.lookup(e, req(accept_encoding=ae))  # synchronous: no encode
        assert resp.body is e.body
        _, f = head(resp)
        assert f["content-encoding"] == ["gzip"]  # a single coding
        assert f["vary"] == ["Accept-Encoding"] and f["etag"] == ['"g1"']
    # clients that do not take gzip get the identity, decoded (never recompressed)
    for ae in (None, "br", "identity"):
        resp = await serve(transformer, e, req(accept_encoding=ae))
        _, f = head(resp)
        assert "content-encoding" not in f and resp.body == body
        assert f["etag"] == ['"g1-decoded"'] and f["content-length"] == [str(len(body))]
    # refusing identity and gzip: the origin chose gzip, so it goes as stored (no 406)
    resp = await serve(transformer, e, req(accept_encoding="identity;q=0, br"))
    assert resp.status == 200 and resp.body is e.body
    assert head(resp)[1]["content-encoding"] == ["gzip"]


async def test_never_406_for_a_coding_the_origin_chose(make_transformer):
    """RFC 9110 12.5.3: a coding the client did not list is sent as stored when the
    edge cannot decode it (over max_bytes, a coding it has no decoder for, two codings,
    the decoder failing), never answered 406; only what the edge varies says Vary."""
    t = make_transformer(compression={"max_bytes": 2048})
    big = gzip.compress(os.urandom(4000))
    cases = [
        ("/big.js", big, "gzip", True),  # decoded body would be over max_bytes
        ("/z.js", b"\x28\xb5\x2f\xfd" + os.urandom(50), "zstd", False),
        ("/two.js", gzip.compress(gzip.compress(b"x" * 3000)), "gzip, gzip", False),
        ("/bad.js", b"not gzip at all", "gzip", True),  # decoding fails
    ]
    for path, body, coding, varies in cases:
        e = entry(path, body, ("Content-Type", "text/javascript"), ("Content-Encoding", coding))
        for ae in ("br", "identity", None, "identity;q=0"):
            resp = await serve(t, e, req(path, accept_encoding=ae))
            status, f = head(resp)
            assert status == 200 and resp.body == body, (path, ae)
            assert f["content-encoding"] == [coding]
            assert ("vary" in f) == varies, (path, ae, f.get("vary"))


async def test_5_2_2_6_no_transform_on_an_origin_compressed_body(transformer):
    e = entry(
        "/a.js",
        gzip.compress(b"x" * 5000),
        ("Content-Type", "text/javascript"),
        ("Content-Encoding", "gzip"),
        ("Cache-Control", "no-transform"),
    )
    # never decoded, never 406, and no Vary: every client gets the same bytes
    for ae in (None, "br", "identity;q=0"):
        assert transformer.lookup(e, req("/a.js", accept_encoding=ae)) is None


async def test_5_2_2_6_no_transform_responses_are_sent_as_they_are(transformer):
    e = site_entry("js/app.js", "text/javascript", '"v1"', ("Cache-Control", "no-transform"))
    assert transformer.lookup(e, req(accept_encoding="br, gzip")) is None
    assert transformer.lookup(e, req(accept_encoding="identity;q=0, br")) is None


async def test_5_2_1_6_request_no_transform(transformer):
    e = site_entry("js/app.js", "text/javascript")
    r = req(accept_encoding="br", cache_control="no-transform")
    resp = transformer.lookup(e, r)
    # identity bytes, still with Vary: other clients get br for this URL (RFC 9110 12.5.5)
    assert resp.body is e.body and "content-encoding" not in head(resp)[1]
    assert head(resp)[1]["vary"] == ["Accept-Encoding"]


async def test_14_ranges_are_served_from_the_identity(transformer):
    e = site_entry("js/app.js", "text/javascript")
    await serve(transformer, e, req(accept_encoding="br"))  # a br variant exists
    resp = transformer.lookup(e, req(accept_encoding="br", range="bytes=0-99"))
    assert resp.body is e.body and head(resp)[1]["vary"] == ["Accept-Encoding"]
    assert "content-encoding" not in head(resp)[1]
    # a stored 206 is never transformed
    part = entry(
        "/p.js",
        b"x" * 2000,
        ("Content-Type", "text/javascript"),
        ("Content-Range", "bytes 0-1999/9000"),
        status=206,
        reason="Partial Content",
    )
    assert transformer.lookup(part, req("/p.js", accept_encoding="br")) is None


async def test_only_200_responses_are_transformed(transformer):
    e = entry(
        "/missing",
        b"<p>not found</p>" * 200,
        ("Content-Type", "text/html"),
        status=404,
        reason="Not Found",
    )
    assert transformer.lookup(e, req("/missing", accept_encoding="br")) is None
    assert transformer.lookup(e, req("/missing", method="POST", accept_encoding="br")) is None


async def test_head_gets_the_same_head_as_get(transformer):
    e = site_entry("js/app.js", "text/javascript")
    got = await serve(transformer, e, req(accept_encoding="br"))
    assert transformer.lookup(e, req(method="HEAD", accept_encoding="br")) is got


async def test_13_1_2_conditional_requests_on_variants(transformer):
    e = site_entry("js/app.js", "text/javascript")
    for ae in ("br", "gzip"):
        await serve(transformer, e, req(accept_encoding=ae))

    def answer(ae, inm):
        r = req(accept_encoding=ae, if_none_match=inm)
        v = transformer.lookup(e, r)
        return v.etag, evaluate("GET", r.fields, etag=v.etag, last_modified=v.last_modified)

    assert answer("gzip, deflate, br", '"v1-br"') == ('"v1-br"', 304)
    # the client holds the gzip variant and still accepts gzip: keep it, answer 304
    assert answer("gzip, deflate, br", '"v1-gzip"') == ('"v1-gzip"', 304)
    assert answer("gzip, deflate, br", 'W/"v1-gzip"') == ('"v1-gzip"', 304)
    # ... or the identity
    assert answer("gzip, deflate, br", '"v1"') == ('"v1"', 304)
    # a tag for a coding the client no longer accepts: the full response
    assert answer("br, gzip;q=0", '"v1-gzip"') == ('"v1-br"', None)
    assert answer("br", '"v0-br"') == ('"v1-br"', None)
    _, f = head(transformer.lookup(e, req(accept_encoding="br", if_none_match='"v1-br"')))
    assert f["vary"] == ["Accept-Encoding"]  # what a 304 repeats (RFC 9110 15.4.5)


async def test_12_5_5_bodies_under_min_bytes_are_not_varied(transformer):
    """Too small to be given a coding, so the same bytes for every client and no Vary
    added; the origin's own Vary goes as sent."""
    e = entry("/s.css", b"body{color:red}\n" * 30, ("Content-Type", "text/css"))
    assert len(e.body) < 1024 and transformer.kind(e) == "fixed"
    for ae in ("br, gzip", None, "identity;q=0, gzip"):
        assert transformer.lookup(e, req("/s.css", accept_encoding=ae)) is None
    e = entry("/s.css", e.body, ("Content-Type", "text/css"), ("Vary", "Origin"))
    assert transformer.lookup(e, req("/s.css", accept_encoding="br")) is None


async def test_12_5_5_types_never_compressed_are_not_varied_nor_406(transformer):
    e = entry("/f.woff2", os.urandom(3000), ("Content-Type", "font/woff2"))
    assert transformer.kind(e) == "fixed"
    for ae in ("br", "*;q=0", "identity;q=0"):
        assert transformer.lookup(e, req("/f.woff2", accept_encoding=ae)) is None


async def test_a_coding_that_does_not_shrink_the_body_is_not_used(transformer):
    e = entry("/r.txt", os.urandom(5000), ("Content-Type", "text/plain"))
    resp = await serve(transformer, e, req("/r.txt", accept_encoding="br, gzip"))
    assert resp.body is e.body and head(resp)[1]["vary"] == ["Accept-Encoding"]
    started = transformer.pool.jobs_started
    assert transformer.lookup(e, req("/r.txt", accept_encoding="br, gzip")).body is e.body
    assert transformer.pool.jobs_started == started  # remembered, not tried again


async def test_disabled_path_prefixes(make_transformer):
    t = make_transformer(disabled_prefixes=["/js/"])
    assert t.lookup(site_entry("js/app.js", "text/javascript"), req(accept_encoding="br")) is None
    css = site_entry("css/site.css", "text/css")
    assert t.lookup(css, req("/css/site.css", accept_encoding="br")) is NEEDS_ENCODING


# the variant cache ------------------------------------------------------------------------
async def test_variants_die_with_their_source(transformer):
    e = site_entry("js/app.js", "text/javascript")
    br = await serve(transformer, e, req(accept_encoding="br"))
    assert transformer.lookup(e, req(accept_encoding="br")) is br
    # replaced by a new response (new body): never the old variant
    new = entry(
        "/js/app.js",
        e.body.replace(b"function", b"function "),
        ("Content-Type", "text/javascript"),
        ("ETag", '"v2"'),
    )
    assert transformer.lookup(new, req(accept_encoding="br")) is NEEDS_ENCODING
    # purged
    await serve(transformer, e, req(accept_encoding="br"))
    transformer.forget(e.key)
    assert transformer.lookup(e, req(accept_encoding="br")) is NEEDS_ENCODING


async def test_a_304_refresh_keeps_the_encoded_body_and_rebuilds_the_head(transformer):
    e = site_entry("js/app.js", "text/javascript")
    br = await serve(transformer, e, req(accept_encoding="br"))
    fresh = refresh_from_304(
        e,
        [("Cache-Control", "max-age=600"), ("ETag", '"v1"')],
        request_time=NOW + 70,
        response_time=NOW + 70,
        settings=CacheSettings(),
        via="1.1 edge-1",
    )
    started = transformer.pool.jobs_started
    again = transformer.lookup(fresh, req(accept_encoding="br"))
    assert again is not NEEDS_ENCODING and again is not br
    assert again.body is br.body and transformer.pool.jobs_started == started
    assert head(again)[1]["cache-control"] == ["max-age=600"]
    assert again.freshness is fresh.freshness


async def test_the_variant_cache_is_bounded(make_transformer):
    t = make_transformer(cache_max_bytes=6000)
    entries = [
        entry(
            f"/{i}.js",
            (SITE / "js/app.js").read_bytes() + bytes([i]),
            ("Content-Type", "text/javascript"),
        )
        for i in range(10)
    ]
    for e in entries:
        await serve(t, e, req(f"/{e.key.rsplit('/', 1)[1]}", accept_encoding="br"))
    assert t.variants.bytes <= 6000
    assert t.lookup(entries[0], req("/0.js", accept_encoding="br")) is NEEDS_ENCODING


# the pool ---------------------------------------------------------------------------------
async def test_n_concurrent_requests_for_one_variant_encode_it_once(transformer):
    e = site_entry("css/site.css", "text/css")
    r = req("/css/site.css", accept_encoding="gzip, deflate, br")
    assert transformer.lookup(e, r) is NEEDS_ENCODING
    results = await asyncio.gather(*(transformer.make(e, r) for _ in range(20)))
    assert transformer.pool.jobs_started == 1
    assert all(v is results[0] for v in results)
    assert head(results[0])[1]["content-encoding"] == ["br"]


async def test_a_full_pool_sends_the_identity_instead_of_queueing(make_transformer):
    t = make_transformer(pool={"workers": 1, "max_pending": 1})
    release = threading.Event()
    blocker = asyncio.ensure_future(t.pool.run("blocker", lambda: release.wait(5)))
    await asyncio.sleep(0)
    e = site_entry("js/app.js", "text/javascript")
    resp = t.lookup(e, req(accept_encoding="br"))
    assert resp is not NEEDS_ENCODING and resp.body is e.body
    assert head(resp)[1]["vary"] == ["Accept-Encoding"]
    busy = t.lookup(e, req(accept_encoding="identity;q=0, br"))
    assert busy.status == 503 and head(busy)[1]["retry-after"] == ["1"]
    release.set()
    await blocker


async def test_metrics_count_bytes_and_cpu_time(transformer):
    e = site_entry("gallery.html", "text/html")
    await serve(transformer, e, req("/gallery.html", accept_encoding="br"))
    reg = transformer.registry
    labels = {"tier": "edge", "kind": "br"}
    assert reg.get_sample_value("cdn_optimize_bytes_in_total", labels) == len(e.body)
    out = reg.get_sample_value("cdn_optimize_bytes_out_total", labels)
    assert 0 < out < len(e.body)
    assert reg.get_sample_value("cdn_optimize_cpu_seconds_total", labels) > 0
    ok = {**labels, "result": "ok"}
    assert reg.get_sample_value("cdn_optimize_transforms_total", ok) == 1
    assert reg.get_sample_value("cdn_optimize_cache_variants", {"tier": "edge"}) >= 1
