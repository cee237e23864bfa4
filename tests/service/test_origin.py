"""The origin over HTTP (aiohttp test server on loopback): validators, conditional requests
(RFC 9110 13), ranges (RFC 9110 14), path safety, per-path headers, counters and config."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from cdn_core.errors import ConfigError
from cdn_core.metrics import new_registry
from origin.app import create_app, create_origin_admin_app
from origin.config import OriginConfig, load_origin_config
from origin.handler import http_date

REPO = Path(__file__).resolve().parents[2]
MTIME = 1_600_000_000  # a fixed past mtime, so Last-Modified is known and "strong"
INDEX = b"<!DOCTYPE html><title>home</title><p>" + b"hello origin " * 20 + b"</p>\n"
CSS = b"body { color: #222; }\n" * 10
NOT_FOUND = b"<!DOCTYPE html><title>404</title><p>not here</p>\n"
SECRET = b"TOP-SECRET-DO-NOT-SERVE"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A root with pages, a subdirectory, a dotfile, and symlinks in and out of the root."""
    root = tmp_path / "site"
    files = {
        "index.html": INDEX,
        "about.html": b"<!DOCTYPE html><title>about</title>\n",
        "404.html": NOT_FOUND,
        "css/site.css": CSS,
        "images/a.jpg": bytes(range(256)) * 4,
        "robots.txt": b"User-agent: *\n",
        "sub/index.html": b"<!DOCTYPE html><title>sub</title>\n",
        "nodir/page.html": b"<p>a directory without an index</p>\n",
        ".secret": SECRET,
        "empty.txt": b"",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))
    (tmp_path / "outside.txt").write_bytes(SECRET)
    (root / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (root / "innocent.txt").symlink_to(root / ".secret")
    (root / "alias.html").symlink_to(root / "about.html")
    return root


async def start(aiohttp_client, root: Path, **settings) -> tuple[TestClient, web.Application]:
    app = create_app(OriginConfig(root=root, **settings), registry=new_registry())
    return await aiohttp_client(app), app


async def raw_status(client: TestClient, raw_path: str) -> tuple[int, bytes]:
    """Send ``raw_path`` byte for byte (aiohttp's client would normalise it)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            f"GET {raw_path} HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


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


async def etag_of(client: TestClient, path: str = "/index.html") -> str:
    resp = await client.head(path)
    return resp.headers["ETag"]


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


# --- path safety, errors and methods ----------------------------------------------------


@pytest.mark.parametrize(
    "raw_path",
    [
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/%2E%2E/%2e%2e/outside.txt",
        "/css/../../outside.txt",
        "/css/%2e%2e%2f%2e%2e%2foutside.txt",
        "/..%2foutside.txt",
        "/.secret",
        "/%2esecret",
        "/css/..%5c..%5coutside.txt",
        "/escape.txt",  # a symlink out of the root
        "/innocent.txt",  # a symlink to a dotfile inside the root
        "/index.html%00.txt",
    ],
)
async def test_paths_cannot_leave_the_root_or_reach_dotfiles(aiohttp_client, site, raw_path):
    client, _ = await start(aiohttp_client, site)
    status, body = await raw_status(client, raw_path)
    assert status in (400, 404)
    assert SECRET not in body
    assert b"[project]" not in body


async def test_symlink_inside_the_root_is_served(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/alias.html")
    assert resp.status == 200
    assert resp.headers["Surrogate-Key"] == "html site"


async def test_missing_file_gives_404_with_the_site_page(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site)
    resp = await client.get("/no/such/page.html")
    assert resp.status == 404
    assert await resp.read() == NOT_FOUND
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["Cache-Control"] == "public, max-age=10"
    head = await client.head("/no/such/page.html")
    assert head.status == 404 and await head.read() == b""


async def test_404_without_a_page(aiohttp_client, site):
    client, _ = await start(aiohttp_client, site, not_found_page=None)
    resp = await client.get("/missing")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_give_405_with_allow(aiohttp_client, site, method):
    client, _ = await start(aiohttp_client, site)
    resp = await client.request(method, "/index.html")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET, HEAD"


# --- counters, metrics and the access log -----------------------------------------------


async def test_status_counts_every_request_that_reaches_the_handler(aiohttp_client, site):
    client, app = await start(aiohttp_client, site)
    admin = await aiohttp_client(create_origin_admin_app(app))
    etag = await etag_of(client)  # HEAD /index.html
    await client.get("/index.html")
    await client.get("/index.html", headers={"If-None-Match": etag})  # 304
    await client.get("/missing.html")  # 404
    await client.post("/")  # 405
    await client.get("/")

    status = await (await admin.get("/status")).json()
    assert status["name"] == "origin"
    assert status["role"] == "origin"
    assert status["requests"] == 6
    assert status["by_path"] == {"/index.html": 3, "/missing.html": 1, "/": 2}
    assert status["by_method"] == {"HEAD": 1, "GET": 4, "POST": 1}
    assert status["root"] == os.path.realpath(site)

    metrics = await (await admin.get("/metrics")).text()
    assert 'cdn_origin_requests_total{method="GET",status_class="2xx"} 2.0' in metrics
    assert 'cdn_origin_requests_total{method="GET",status_class="3xx"} 1.0' in metrics
    assert 'cdn_origin_requests_total{method="GET",status_class="4xx"} 1.0' in metrics
    assert 'cdn_origin_requests_total{method="POST",status_class="4xx"} 1.0' in metrics
    sent = 2 * len(INDEX) + len(NOT_FOUND)  # HEAD, 304 and 405 bodies are not file bytes
    body_405 = len(b"method not allowed\n")
    assert f"cdn_origin_response_bytes_total {float(sent + body_405)}" in metrics
    assert (await admin.get("/healthz")).status == 200


async def test_by_path_is_bounded(aiohttp_client, site):
    client, app = await start(aiohttp_client, site, status_max_paths=2)
    admin = await aiohttp_client(create_origin_admin_app(app))
    for path in ("/a", "/b", "/c", "/d", "/a"):
        await client.get(path)
    status = await (await admin.get("/status")).json()
    assert status["by_path"] == {"/a": 2, "/b": 1, "(other)": 2}


async def test_access_log_is_one_json_line_per_request(aiohttp_client, site, caplog):
    client, _ = await start(aiohttp_client, site)
    with caplog.at_level(logging.INFO, logger="cdn.origin.access"):
        resp = await client.get("/css/site.css", headers={"Range": "bytes=0-9"})
        await resp.read()
        # The server logs when its handler returns, which may be just after the client
        # has the last byte; give it a few loop turns rather than a sleep.
        for _ in range(100):
            records = [r for r in caplog.records if r.name == "cdn.origin.access"]
            if records:
                break
            await asyncio.sleep(0.01)
    assert len(records) == 1
    line = json.loads(records[0].getMessage())
    assert set(line) == {"time", "client", "method", "path", "status", "bytes", "duration_ms"}
    assert line["method"] == "GET" and line["path"] == "/css/site.css"
    assert line["status"] == 206 and line["bytes"] == 10
    assert line["client"] == "127.0.0.1"
    assert line["duration_ms"] >= 0


# --- configuration --------------------------------------------------------------------


def test_defaults_equal_configs_origin_yaml(monkeypatch):
    monkeypatch.chdir(REPO)
    assert load_origin_config(REPO / "configs" / "origin.yaml") == OriginConfig()


def test_bad_config_file_names_the_file_and_field(tmp_path, site):
    bad = tmp_path / "origin.yaml"
    bad.write_text(f"root: {site}\ncache_rules:\n  - match: '*.html'\n    cache_contrl: x\n")
    with pytest.raises(ConfigError) as info:
        load_origin_config(bad)
    assert str(bad) in str(info.value)
    assert "cache_rules.0.cache_contrl" in str(info.value)

    bad.write_text(f"root: {site}\nport: lots\n")
    with pytest.raises(ConfigError, match=r"origin\.yaml: port: "):
        load_origin_config(bad)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_root_must_be_a_directory(tmp_path, kind):
    root = tmp_path / "nope"
    if kind == "file":
        root.write_text("x")
    with pytest.raises(ConfigError, match=r"<flags>: root: .*not a directory"):
        load_origin_config(None, {"root": str(root)})


def test_header_injection_in_rules_is_rejected(site):
    with pytest.raises(ConfigError, match="cache_rules.0.cache_control"):
        load_origin_config(
            None,
            {"root": str(site), "cache_rules": [{"match": "*", "cache_control": "a\r\nX: y"}]},
        )


async def test_unexpected_error_answers_500_and_is_counted(aiohttp_client, site, monkeypatch):
    import origin.handler

    def broken(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(origin.handler, "open_target", broken)
    client, app = await start(aiohttp_client, site)
    admin = await aiohttp_client(create_origin_admin_app(app))
    resp = await client.get("/index.html")
    assert resp.status == 500
    status = await (await admin.get("/status")).json()
    assert status["by_path"] == {"/index.html": 1}
