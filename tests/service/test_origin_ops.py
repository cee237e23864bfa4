"""The origin over HTTP, operations side: path safety, errors and methods, counters,
metrics and the access log, configuration."""

from __future__ import annotations

import asyncio
import json
import logging
import os

import pytest
from originharness import INDEX, NOT_FOUND, REPO, SECRET, etag_of, raw_status, start

from cdn_core.errors import ConfigError
from origin.app import create_origin_admin_app
from origin.config import OriginConfig, load_origin_config

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
    # Each body read whole: what a client has received must be in the counters.
    await (await client.get("/index.html")).read()
    await (await client.get("/index.html", headers={"If-None-Match": etag})).read()  # 304
    await (await client.get("/missing.html")).read()  # 404
    await (await client.post("/")).read()  # 405
    await (await client.get("/")).read()

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
    assert f"cdn_origin_response_bytes_total {float(sent + body_405)}" in metrics, [x for x in metrics.splitlines() if "bytes_total" in x]
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
