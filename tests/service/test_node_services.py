"""Nodes running services from the control plane (issue 20): the service is chosen by
Host, an unknown host gets 421 and reaches no origin, each service keys its own objects,
a redirect rule answers at the edge, a query-key rule shares one object between
spellings and a URL purge still reaches it, activation and rollback switch the node as a
whole, and the heartbeat reports what the node runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from nodeharness import Route

from cdn_core.metrics import new_registry
from cdn_core.node.app import Node
from control_plane.app import create_app
from control_plane.config import ControlPlaneConfig, PurgeConfig
from control_plane.testing import ADMIN, NODE_TOKEN, auth_config

CC60 = {"Cache-Control": "max-age=60"}


@pytest.fixture
async def cp(aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = ControlPlaneConfig(db=str(tmp_path / "control.db"),
                                purge=PurgeConfig(node_timeout=1, retry_interval=3600),
                                auth=auth_config(tmp_path))
    server = await aiohttp_server(create_app(config, registry=new_registry()))
    return await aiohttp_client(server, headers=ADMIN)


def control(cp: TestClient) -> dict[str, Any]:
    return {"url": str(cp.make_url("")).rstrip("/"), "token": NODE_TOKEN, "interval": 3600,
            "timeout": 2}


def service(name: str, domain: str, origin: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "domains": [domain], "origins": {"servers": [{"url": origin}]},
            **fields}


async def apply(cp: TestClient, document: dict[str, Any]) -> int:
    resp = await cp.post(f"/v1/services/{document['name']}/versions",
                         json={"document": document})
    body = await resp.json()
    assert resp.status in (200, 201), body
    resp = await cp.post(f"/v1/services/{document['name']}/activate",
                         json={"version": body["version"]})
    assert resp.status == 200, await resp.json()
    return int(body["version"])


def fetched(origin: Any, path: str) -> int:
    """Origin fetches of ``path`` whatever the query (the origin counts by target)."""
    return sum(n for target, n in origin.hits.items() if target.split("?")[0] == path)


async def beat(node: Node) -> None:
    async with asyncio.timeout(5):
        assert await node.sync.beat(), node.sync.last_error


async def get(http: Any, node: Node, path: str, host: str, **headers: str) -> Any:
    return await http(node, path, Host=host, **headers)


async def test_host_selects_the_service_and_unknown_hosts_get_421(cp, origin, make_node, http):
    origin.routes["/page"] = Route(headers=CC60, body=b"same path")
    edge = await make_node([origin.url], control=control(cp))
    status, _, _ = await get(http, edge, "/page", "anything.example")
    assert status == 200  # no service anywhere yet: one implicit site
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await apply(cp, service("blog", "*.blog.example.test", origin.url))
    await beat(edge)
    assert edge.services.running() == {"shop": 1, "blog": 1}

    before = origin.hits["/page"]
    status, _, body = await get(http, edge, "/page", "evil.example")
    assert status == 421 and b"evil.example" in body
    assert origin.hits["/page"] == before  # an unknown host never reaches an origin

    await get(http, edge, "/page", "shop.example.test")
    await get(http, edge, "/page", "a.blog.example.test")
    assert origin.hits["/page"] == before + 2  # one object per service, same path
    _, h, _ = await get(http, edge, "/page", "shop.example.test")
    assert "hit" in h["Cache-Status"]

    await beat(edge)  # reports what it runs: the activation completes
    progress = (await (await cp.get("/v1/services/shop")).json())["progress"]
    assert progress["state"] == "complete" and progress["done"] == 1


async def test_redirect_query_key_and_url_purge(cp, origin, make_node, http):
    origin.routes["/p"] = Route(headers=CC60, body=b"product")
    edge = await make_node([origin.url], control=control(cp))
    await apply(cp, service(
        "shop", "shop.example.test", origin.url,
        request_rules=[{"match": {"path_prefix": "/old/"},
                        "redirect": {"status": 308, "to": "/p"}}],
        cache_key={"query": {"mode": "deny", "names": ["utm_*"]}}))
    await beat(edge)
    status, h, _ = await get(http, edge, "/old/x?id=1", "shop.example.test")
    assert status == 308 and h["Location"] == "/p?id=1" and "no-store" in h["Cache-Control"]
    assert origin.hits.get("/old/x", 0) == 0

    await get(http, edge, "/p?utm_source=mail", "shop.example.test")
    _, h, _ = await get(http, edge, "/p?utm_campaign=x", "shop.example.test")
    assert "hit" in h["Cache-Status"] and fetched(origin, "/p") == 1  # one key for both

    assert edge.purge(edge.sync._selector({"type": "url",
                                            "value": "http://shop.example.test/p?utm_x=1"})) == 1
    await get(http, edge, "/p", "shop.example.test")
    assert fetched(origin, "/p") == 2


async def test_a_page_reflecting_a_parameter_left_out_of_the_key_is_not_stored(
    cp, origin, make_node, http
):
    # utm_* is not in the key, so a page built from it would go to every spelling.
    origin.routes["/p"] = Route(headers=CC60, body=b"product ", echo_query="utm_content")
    edge = await make_node([origin.url], control=control(cp))
    await apply(cp, service("shop", "shop.example.test", origin.url,
                            cache_key={"query": {"mode": "deny", "names": ["utm_*"]}}))
    await beat(edge)
    _, h, b = await get(http, edge, "/p?utm_content=%3Cscript%3Ealert(1)%3C/script%3E",
                        "shop.example.test")
    assert b.endswith(b"<script>alert(1)</script>") and "stored" not in h["Cache-Status"]
    _, h, b = await get(http, edge, "/p", "shop.example.test")
    assert b == b"product " and "stored" in h["Cache-Status"]

async def test_activation_and_rollback_switch_the_whole_service(cp, origin, make_node, http):
    origin.routes["/a"] = Route(headers=CC60, body=b"a")
    edge = await make_node([origin.url], control=control(cp))
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await beat(edge)
    await apply(cp, service("shop", "shop.example.test", origin.url, request_rules=[
        {"redirect": {"status": 301, "https": True}}]))
    await beat(edge)
    assert edge.services.running() == {"shop": 2}
    status, h, _ = await get(http, edge, "/a?q=1", "shop.example.test")
    assert status == 301 and h["Location"] == "https://shop.example.test/a?q=1"
    assert (await cp.post("/v1/services/shop/rollback")).status == 200
    await beat(edge)
    assert edge.services.running() == {"shop": 1}
    status, _, _ = await get(http, edge, "/a", "shop.example.test")
    assert status == 200
    assert (await cp.delete("/v1/services/shop")).status == 204
    await beat(edge)
    assert edge.services.running() is None  # the last one gone: one implicit site again


async def test_mid_tier_uses_each_services_origins_and_rules(cp, origin, make_node, http,
                                                              aiohttp_server):
    from aiohttp import web

    seen: list[tuple[str, str, str]] = []

    async def other(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Host", ""),
                     request.headers.get("X-Site", "")))
        return web.Response(body=b"other site " + request.path.encode(),
                            status=404 if request.path == "/missing" else 200,
                            headers={"Cache-Control": "no-cache"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", other)
    second = await aiohttp_server(app)
    origin.routes["/p"] = Route(headers=CC60, body=b"first site")
    mid = await make_node([origin.url], tier="mid", name="mid1", control=control(cp))
    await apply(cp, service("one", "one.example.test", origin.url))
    await apply(cp, service(
        "two", "two.example.test", str(second.make_url("")).rstrip("/"),
        origins={"servers": [{"url": str(second.make_url("")).rstrip("/"),
                              "host_header": "origin.two.internal"}]},
        request_rules=[{"match": {"path_prefix": "/static/"},
                        "rewrite": {"prefix": "/static/", "to": "/assets/"}},
                       {"set_headers": {"X-Site": "two"}}],
        cache_rules=[{"match": {"path_prefix": "/"}, "ttl": 300, "mode": "override"}],
        response_rules=[{"set_headers": {"X-Frame-Options": "DENY"}}],
        error_pages={404: "<h1>not on two</h1>"}))
    await beat(mid)
    _, _, body = await get(http, mid, "/p", "one.example.test")
    assert body == b"first site"
    _, h, body = await get(http, mid, "/static/app.js", "two.example.test")
    assert body == b"other site /assets/app.js"
    assert seen == [("/assets/app.js", "origin.two.internal", "two")]
    assert "X-Frame-Options" not in h  # response rules are for clients: edges only
    # The origin said no-cache; the service's override rule makes it fresh for 300 s.
    _, h, _ = await get(http, mid, "/static/app.js", "two.example.test")
    assert "hit" in h["Cache-Status"] and len(seen) == 1

    edge = await make_node([f"http://127.0.0.1:{mid.port}"], name="edge1", control=control(cp))
    await beat(edge)
    _, h, body = await get(http, edge, "/static/app.js", "two.example.test")
    assert h["X-Frame-Options"] == "DENY" and body == b"other site /assets/app.js"
    status, h, body = await get(http, edge, "/missing", "two.example.test")
    assert (status, body) == (404, b"<h1>not on two</h1>")
    assert h["Content-Type"].startswith("text/html") and h["X-Frame-Options"] == "DENY"


async def test_a_service_purge_removes_that_service_only(cp, origin, make_node, http):
    origin.routes["/x"] = Route(headers=CC60, body=b"x")
    edge = await make_node([origin.url], control=control(cp))
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await apply(cp, service("blog", "blog.example.test", origin.url))
    await beat(edge)
    for host in ("shop.example.test", "blog.example.test"):
        await get(http, edge, "/x", host)
    assert edge.purge(edge.sync._selector({"type": "service", "value": "shop"})) == 1
    _, shop, _ = await get(http, edge, "/x", "shop.example.test")
    _, blog, _ = await get(http, edge, "/x", "blog.example.test")
    assert "hit" not in shop["Cache-Status"].split(",")[-1] and "hit" in blog["Cache-Status"]


async def test_a_service_can_turn_compression_off(cp, origin, make_node, http):
    css = b"body { color: red; }\n" * 200
    origin.routes["/s.css"] = Route(headers={**CC60, "Content-Type": "text/css"}, body=css)
    edge = await make_node([origin.url], control=control(cp))
    await apply(cp, service("plain", "plain.example.test", origin.url,
                            features={"compression": False}))
    await apply(cp, service("packed", "packed.example.test", origin.url))
    await beat(edge)
    for host, coded in (("plain.example.test", False), ("packed.example.test", True)):
        for _ in range(2):  # the miss, then the hit
            _, h, body = await get(http, edge, "/s.css", host, Accept_Encoding="br, gzip")
            assert ("Content-Encoding" in h) is coded, (host, h)
            assert (body == css) is not coded


async def test_a_node_back_from_a_partition_catches_up_before_it_serves(cp, origin,
                                                                       make_node, http,
                                                                       clock):
    origin.routes["/a"] = Route(headers=CC60, body=b"a")
    edge = await make_node([origin.url], control={**control(cp), "interval": 5})
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await beat(edge)
    # While the node is away (no heartbeat for more than three intervals), version 2
    # starts to redirect everything.
    await apply(cp, service("shop", "shop.example.test", origin.url, request_rules=[
        {"redirect": {"status": 302, "to": "https://elsewhere.example/"}}]))
    clock.advance(20)
    status, h, _ = await get(http, edge, "/a", "shop.example.test")
    assert status == 302 and edge.services.running() == {"shop": 2}
    # in touch again: requests are not held up any more
    assert edge.proxy.services_confirmed_until > clock.time()


async def test_prewarm_stores_under_the_services_key(cp, origin, make_node, http):
    origin.routes["/warm"] = Route(headers=CC60, body=b"warm")
    edge = await make_node([origin.url], control=control(cp))
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await beat(edge)
    assert "stored" in await edge.prewarm("http://shop.example.test/warm")
    _, h, _ = await get(http, edge, "/warm", "shop.example.test")
    assert "hit" in h["Cache-Status"] and fetched(origin, "/warm") == 1
    # a service keying on a request field: the prewarmed key is a field-less request's
    await apply(cp, service("shop", "shop.example.test", origin.url,
                            cache_key={"headers": ["X-Device"]}))
    await beat(edge)
    assert "stored" in await edge.prewarm("http://shop.example.test/warm")
    _, h, _ = await get(http, edge, "/warm", "shop.example.test")
    assert "hit" in h["Cache-Status"] and fetched(origin, "/warm") == 2


async def test_a_rate_limit_policy_can_name_a_service(cp, origin, make_node, http):
    from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy

    origin.routes["/r"] = Route(headers=CC60, body=b"r")
    edge = await make_node([origin.url], control=control(cp))
    await apply(cp, service("shop", "*.shop.example.test", origin.url))
    await apply(cp, service("blog", "blog.example.test", origin.url))
    await beat(edge)
    edge.ratelimiter.set_policies([RateLimitPolicy(name="shop-only", service="shop",
                                                   limit=1, window=60)])
    statuses = [(await get(http, edge, "/r", host))[0]
                for host in ("a.shop.example.test", "b.shop.example.test",
                             "blog.example.test", "blog.example.test")]
    assert statuses == [200, 429, 200, 200]  # one bucket per client across the service


async def test_a_service_can_ask_for_signed_urls(cp, origin, make_node, http, clock):
    from cdn_core.node.policy.signed import sign_url

    secret = "s" * 32
    origin.routes["/private/doc"] = Route(headers=CC60, body=b"secret doc")
    edge = await make_node([origin.url], control=control(cp))
    assert (await cp.put("/v1/signing-keys/k1", json={"secret": secret})).status == 200
    await apply(cp, service("shop", "shop.example.test", origin.url,
                            features={"signed_url_prefixes": ["/private/"]}))
    await apply(cp, service("blog", "blog.example.test", origin.url))
    await beat(edge)
    status, _, body = await get(http, edge, "/private/doc", "shop.example.test")
    assert status == 403 and b"signed URL refused" in body
    signed = sign_url("/private/doc", kid="k1", secret=secret, expires=int(clock.time()) + 60)
    assert (await get(http, edge, signed, "shop.example.test"))[0] == 200
    assert (await get(http, edge, "/private/doc", "blog.example.test"))[0] == 200
    assert (await cp.delete("/v1/services/shop")).status == 204
    await beat(edge)
    assert edge.signed_urls not in edge.proxy.gates  # nobody needs it any more


async def test_shields_name_the_mid_tiers_an_edge_uses(cp, origin, make_node, http):
    for i in range(8):
        origin.routes[f"/k{i}"] = Route(headers=CC60, body=b"k")
    mids = [await make_node([origin.url], tier="mid", name=f"mid{i}", control=control(cp))
            for i in (1, 2)]
    for mid in mids:
        await beat(mid)  # registers it under its name
    edge = await make_node([f"http://127.0.0.1:{m.port}" for m in mids], name="edge1",
                           control=control(cp))
    await apply(cp, service("shop", "shop.example.test", origin.url,
                            origins={"servers": [{"url": origin.url}], "shields": ["mid2"]}))
    await beat(edge)
    before = [m.stats.requests for m in mids]
    for i in range(8):  # rendezvous would spread these over both mid tiers
        assert (await get(http, edge, f"/k{i}", "shop.example.test"))[0] == 200
    assert mids[0].stats.requests == before[0] and mids[1].stats.requests == before[1] + 8


async def test_failover_can_be_forced_for_one_service(cp, origin, make_node, http, clock):
    origin.routes["/f"] = Route(headers={"Cache-Control": "max-age=1"}, body=b"f")
    mid = await make_node([origin.url], tier="mid", name="mid1", control=control(cp))
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await apply(cp, service("blog", "blog.example.test", origin.url))
    await beat(mid)
    for host in ("shop.example.test", "blog.example.test"):
        await get(http, mid, "/f", host)
    resp = await cp.put("/v1/origins/failover", json={"forced": True, "service": "shop"})
    state = await resp.json()
    assert resp.status == 200 and state["forced"] is False and "shop" in state["services"]
    await beat(mid)
    clock.advance(30)  # both copies are stale now
    before = fetched(origin, "/f")
    _, shop, _ = await get(http, mid, "/f", "shop.example.test")
    assert "detail=failover" in shop["Cache-Status"] and fetched(origin, "/f") == before
    _, blog, _ = await get(http, mid, "/f", "blog.example.test")
    assert "detail=failover" not in blog["Cache-Status"] and fetched(origin, "/f") == before + 1
    await cp.put("/v1/origins/failover", json={"forced": False, "service": "shop"})
    await cp.put("/v1/origins/failover", json={"forced": True})  # every service now
    await beat(mid)
    assert mid.failover.services == frozenset() and mid.failover.forced
    clock.advance(30)
    _, blog, _ = await get(http, mid, "/f", "blog.example.test")
    assert "detail=failover" in blog["Cache-Status"]  # service keys found by the override


async def test_automatic_failover_per_service_from_the_mid_tiers_pools(cp, origin, make_node,
                                                                       http):
    from control_plane.origin_watch import judge_service, watch_once

    origin.routes["/ok"] = Route(headers=CC60, body=b"ok")
    mid = await make_node([origin.url], tier="mid", name="mid1", control=control(cp))
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await apply(cp, service("blog", "blog.example.test", "http://127.0.0.1:1"))  # refused
    await beat(mid)
    assert (await get(http, mid, "/ok", "shop.example.test"))[0] == 200
    assert (await get(http, mid, "/ok", "blog.example.test"))[0] == 502
    app = cp.server.app
    for _ in range(3):  # failover.fall rounds
        await watch_once(app)
    state = (await (await cp.get("/v1/origins")).json())["failover"]
    assert state["forced"] is False and list(state["services"]) == ["blog"]
    assert state["services"]["blog"]["auto"] is True
    await beat(mid)
    assert mid.failover.services == frozenset({"blog"})
    status = {"status": {"services": {"upstreams": {"x": [{"up": True}]}}}}
    assert judge_service([status], "x")[0] is False
    assert judge_service([status], "y")[0] is None


async def test_a_control_plane_that_hangs_never_holds_requests_long(cp, origin, make_node,
                                                                    http, clock):
    """A control plane (or its database) that accepts connections and never answers:
    a node whose confirmation ran out holds one request for at most one heartbeat
    interval, then serves with its last state without holding any more."""
    import socket
    import time

    from cdn_core.endpoints import Endpoints

    origin.routes["/h"] = Route(headers=CC60, body=b"h")
    edge = await make_node([origin.url], control={**control(cp), "interval": 0.3})
    await apply(cp, service("shop", "shop.example.test", origin.url))
    await beat(edge)
    with socket.socket() as hung:  # listens, never accepts: connects, then silence
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        edge.sync.endpoints = Endpoints([f"http://127.0.0.1:{hung.getsockname()[1]}"])
        clock.advance(20)
        started = time.monotonic()
        async with asyncio.timeout(5):
            status, _, _ = await get(http, edge, "/h", "shop.example.test")
        held = time.monotonic() - started
        assert status == 200 and held < 1.5  # one interval (0.3 s), not the 2 s timeout
        for _ in range(3):
            clock.advance(20)  # each after the confirmation ran out again
            started = time.monotonic()
            status, _, _ = await get(http, edge, "/h", "shop.example.test")
            assert status == 200 and time.monotonic() - started < 0.3  # not held again
