"""Metrics of a caching node after known traffic through a real node (issue 11): names,
label sets and values on its admin ``/metrics``. Each node has a fresh registry."""

from __future__ import annotations

import asyncio
import socket

from metricsutil import label_values, samples, value
from nodeharness import Route, raw_exchange

from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy

CC60 = {"Cache-Control": "max-age=60"}


async def metrics(http, node) -> str:
    status, _, body = await http(node.admin_port, "/metrics")
    assert status == 200
    return body.decode()


async def eventually(check, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_requests_bytes_and_cache_after_a_miss_and_two_hits(origin, make_node, http):
    origin.routes["/a"] = Route(headers=CC60, body=b"x" * 1000)
    edge = await make_node([origin.url], access_log={"sample": 0})
    for _ in range(3):
        status, _, body = await http(edge, "/a")
        assert status == 200 and len(body) == 1000
    await eventually(lambda: edge.metrics.upstream_seconds._sum.get() >= 0
                     and edge.metrics.upstream_bytes.value == 1000)
    text = await metrics(http, edge)
    assert value(text, "cdn_requests_total", tier="edge", cache_status="miss", protocol="http/1.1") == 1
    assert value(text, "cdn_requests_total", tier="edge", cache_status="hit", protocol="http/1.1") == 2
    assert value(text, "cdn_requests_total", tier="edge", cache_status="stale", protocol="http/1.1") == 0
    assert value(text, "cdn_response_body_bytes_total", tier="edge", cache_status="hit") == 2000
    assert value(text, "cdn_response_body_bytes_total", tier="edge", cache_status="miss") == 1000
    assert value(text, "cdn_upstream_body_bytes_total", tier="edge") == 1000
    assert value(text, "cdn_upstream_fetch_seconds_count", tier="edge") == 1
    assert value(text, "cdn_cache_entries", tier="edge") == 1
    assert value(text, "cdn_cache_bytes", tier="edge") >= 1000
    assert value(text, "cdn_upstream_up", tier="edge", upstream=origin.url) == 1
    assert value(text, "cdn_collapsed_requests_total", tier="edge") == 0
    # /status reads the same counters
    status = edge.status()
    assert status["cache"]["hits"] == 2 and status["cache"]["misses"] == 1


async def test_collapsed_requests_are_counted(origin, make_node, http):
    origin.routes["/slow"] = Route(headers=CC60, delay=0.3)
    edge = await make_node([origin.url], tier="mid", name="mid1", access_log={"sample": 0})
    results = await asyncio.gather(*(http(edge, "/slow") for _ in range(4)))
    assert [r[0] for r in results] == [200] * 4 and origin.hits["/slow"] == 1
    text = await metrics(http, edge)
    assert value(text, "cdn_collapsed_requests_total", tier="mid") == 3
    assert value(text, "cdn_requests_total", tier="mid", cache_status="miss", protocol="http/1.1") == 4


async def test_stale_served_is_counted(origin, make_node, http, clock):
    origin.routes["/s"] = Route(headers={"Cache-Control": "max-age=1, stale-while-revalidate=60"})
    edge = await make_node([origin.url], access_log={"sample": 0})
    await http(edge, "/s")
    clock.advance(5)
    _, h, _ = await http(edge, "/s")
    assert "stale-while-revalidate" in h["Cache-Status"]
    text = await metrics(http, edge)
    assert value(text, "cdn_stale_served_total", tier="edge") == 1
    assert value(text, "cdn_requests_total", tier="edge", cache_status="stale", protocol="http/1.1") == 1


async def test_upstream_down_counts_errors_and_marks_it_down(make_node, http):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    edge = await make_node([dead], access_log={"sample": 0})
    status, _, _ = await http(edge, "/x")
    assert status == 502
    text = await metrics(http, edge)
    assert value(text, "cdn_upstream_errors_total", tier="edge") == 1
    assert value(text, "cdn_upstream_up", tier="edge", upstream=dead) == 0
    assert value(text, "cdn_requests_total", tier="edge", cache_status="error", protocol="http/1.1") == 1


async def test_refused_and_rate_limited_requests(origin, make_node, http):
    origin.routes["/r"] = Route(headers=CC60)
    edge = await make_node([origin.url], access_log={"sample": 0})
    edge.ratelimiter.set_policies(
        [RateLimitPolicy.model_validate({"name": "p", "limit": 1, "window": 60})]
    )
    assert [(await http(edge, "/r"))[0] for _ in range(3)] == [200, 429, 429]
    await raw_exchange(edge.port, b"NOT HTTP AT ALL\r\n\r\n", timeout=0.5)
    text = await metrics(http, edge)
    assert value(
        text, "cdn_ratelimit_decisions_total", tier="edge", mode="enforce", outcome="limited"
    ) == 2
    assert value(text, "cdn_refused_total", tier="edge", reason="bad-request") == 1


async def test_labels_stay_bounded(origin, make_node, http):
    """No request path, host or client address ever becomes a label value, and more
    distinct requests never make more series."""
    origin.routes["/p"] = Route(headers=CC60)
    edge = await make_node([origin.url], access_log={"sample": 0})
    await http(edge, "/p")
    before = set(samples(await metrics(http, edge)))
    for i in range(20):
        await http(edge, f"/p?unique={i}", Host=f"h{i}.example.test")
        await http(edge, f"/missing-{i}")
    text = await metrics(http, edge)
    values = label_values(text)
    assert not any("unique" in v or "missing" in v or "example.test" in v for v in values)
    assert "127.0.0.1" not in {v for v in values if not v.startswith("http://")}
    assert set(samples(text)) == before


async def test_every_node_has_its_own_registry(origin, make_node, http):
    origin.routes["/a"] = Route(headers=CC60)
    e1 = await make_node([origin.url], name="edge1", access_log={"sample": 0})
    e2 = await make_node([origin.url], name="edge2", access_log={"sample": 0})
    await http(e1, "/a")
    assert value(await metrics(http, e1), "cdn_requests_total", tier="edge", cache_status="miss", protocol="http/1.1") == 1
    assert value(await metrics(http, e2), "cdn_requests_total", tier="edge", cache_status="miss", protocol="http/1.1") == 0
