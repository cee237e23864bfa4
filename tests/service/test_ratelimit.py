"""Edge rate limiting through a real edge node (in-process): token buckets by client,
API key, host and path prefix; 429 with Retry-After and the draft RateLimit fields, never
cached; shadow mode; cluster-wide counters through a real Redis server (issue 8)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nodeharness import Route, raw_exchange

from cdn_core.node.app import Node
from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy

BOTH_WIRES = True  # every test over HTTP/1.1 and over HTTP/2 (h2c): one request path

CC60 = {"Cache-Control": "max-age=60"}


def policy(**fields: Any) -> RateLimitPolicy:
    return RateLimitPolicy.model_validate({"name": "p", "limit": 2, "window": 10, **fields})


async def edge_with(make_node: Any, origin: Any, *policies: RateLimitPolicy, **kw: Any) -> Node:
    edge = await make_node([origin.url], **kw)
    assert edge.ratelimiter is not None
    edge.ratelimiter.set_policies(list(policies))
    return edge


async def statuses(http: Any, edge: Node, path: str, n: int, **headers: str) -> list[int]:
    return [(await http(edge, path, **headers))[0] for _ in range(n)]


async def test_no_policy_no_limit(origin, make_node, http) -> None:
    origin.routes["/a"] = Route(headers=CC60)
    edge = await edge_with(make_node, origin)
    assert await statuses(http, edge, "/a", 5) == [200] * 5


async def test_429_fields_and_never_cached(origin, make_node, http, clock) -> None:
    origin.routes["/a"] = Route(headers=CC60, body=b"real")
    edge = await edge_with(make_node, origin, policy(name="burst", limit=2, window=10))
    assert await statuses(http, edge, "/a", 2) == [200, 200]
    status, h, body = await http(edge, "/a")
    assert status == 429 and body.startswith(b"rate limit exceeded")
    assert h["Retry-After"] == "5"  # one token back after window/limit seconds
    assert h["RateLimit-Policy"] == '"burst";q=2;w=10'
    assert h["RateLimit"] == '"burst";r=0;t=5'
    assert h["Cache-Control"] == "no-store" and "Age" not in h
    assert origin.hits["/a"] == 1
    clock.advance(5)  # one token back: the stored 200 answers, not a 429
    status, h, body = await http(edge, "/a")
    assert (status, body) == (200, b"real") and "hit" in h["Cache-Status"]
    assert edge.store.stats()["entries"] == 1
    status, _, _ = await http(edge, "/a")
    assert status == 429
    text = (await http(edge.admin_port, "/metrics"))[2].decode()
    assert 'cdn_ratelimit_decisions_total{mode="enforce",outcome="limited",tier="edge"} 2.0' in text


async def test_429_is_not_stored_for_a_miss_either(origin, make_node, http, clock) -> None:
    origin.routes["/m"] = Route(headers=CC60, body=b"ok")
    edge = await edge_with(make_node, origin, policy(limit=1, window=1))
    assert await statuses(http, edge, "/other", 1) == [404]
    assert (await http(edge, "/m"))[0] == 429
    assert origin.hits.get("/m", 0) == 0 and edge.store.stats()["entries"] <= 1
    clock.advance(1)
    status, h, body = await http(edge, "/m")
    assert (status, body) == (200, b"ok") and "fwd=uri-miss" in h["Cache-Status"]


async def test_shadow_mode_only_counts(origin, make_node, http) -> None:
    origin.routes["/s"] = Route(headers=CC60)
    edge = await edge_with(make_node, origin, policy(name="watch", limit=1, mode="shadow"))
    assert await statuses(http, edge, "/s", 4) == [200] * 4
    assert edge.ratelimiter is not None
    assert edge.ratelimiter.counts["watch"] == {"allowed": 1, "limited": 3}
    status = (await http(edge.admin_port, "/status"))[2]
    assert b'"limited": 3' in status


async def test_by_api_key_header(origin, make_node, http) -> None:
    origin.routes["/api"] = Route(headers=CC60)
    edge = await edge_with(make_node, origin, policy(key="api_key", limit=1))
    assert await statuses(http, edge, "/api", 2, X_API_Key="a") == [200, 429]
    assert await statuses(http, edge, "/api", 1, X_API_Key="b") == [200]
    assert await statuses(http, edge, "/api", 3) == [200] * 3  # no key: not this policy


async def test_host_and_path_prefix_matching(origin, make_node, http) -> None:
    for path in ("/img/1", "/img/2", "/css/1"):
        origin.routes[path] = Route(headers=CC60)
    edge = await edge_with(
        make_node,
        origin,
        policy(name="img", key="path_prefix", path_prefix="/img/", limit=1),
        policy(name="other-site", host="other.test", limit=1),
    )
    assert await statuses(http, edge, "/img/1", 1) == [200]
    assert await statuses(http, edge, "/img/2", 1) == [429]  # one bucket for the prefix
    assert await statuses(http, edge, "/css/1", 3) == [200] * 3
    status, h, _ = await http(edge, "/css/1", Host="OTHER.test:8080")
    assert status == 200
    status, h, _ = await http(edge, "/css/1", Host="other.test")
    assert status == 429 and h["RateLimit-Policy"] == '"other-site";q=1;w=10'


async def test_a_used_up_prefix_cannot_be_reached_by_another_spelling(
    origin, make_node
) -> None:
    origin.routes["/api/a"] = Route(headers={"Cache-Control": "no-store"})
    origin.routes["/o"] = Route(headers={"Cache-Control": "no-store"})
    edge = await edge_with(
        make_node, origin,
        policy(name="api", key="path_prefix", path_prefix="/api/", limit=1),
        policy(name="limited", host="limited.example", limit=1),
    )

    async def status(target: bytes, host: bytes = b"www.example.test") -> bytes:
        out = await raw_exchange(edge.port, b"GET " + target + b" HTTP/1.1\r\nHost: " + host
                                 + b"\r\nConnection: close\r\n\r\n")
        return out[9:12]

    assert await status(b"/api/a") == b"200"
    for spelling in (b"/%61pi/a", b"/x/../api/a", b"/x/%2e%2e/api/a", b"//api/a", b"/API/a"):
        assert await status(spelling) == b"429", spelling
    assert await status(b"/o", b"limited.example") == b"200"
    # The authority of an absolute-form target is the host (RFC 9112 3.2.2).
    assert await status(b"http://limited.example/o", b"other.example") == b"429"


async def test_only_enforced_policies_in_the_fields(origin, make_node, http) -> None:
    origin.routes["/b"] = Route(headers=CC60)
    edge = await edge_with(
        make_node,
        origin,
        policy(name="hard", limit=1, window=60),
        policy(name="soft", limit=100, window=1),
        policy(name="shadow", limit=1, mode="shadow"),
    )
    await http(edge, "/b")
    status, h, _ = await http(edge, "/b")
    assert status == 429
    assert h["RateLimit-Policy"] == '"hard";q=1;w=60, "soft";q=100;w=1'
    assert h["RateLimit"].startswith('"hard";r=0;t=60, "soft";r=98;t=')
    assert h["Retry-After"] == "60"


# -- cluster-wide counters through Redis -------------------------------------------------


@pytest.fixture
async def redis_url(tmp_path: Any) -> AsyncIterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    await writer.wait_closed()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_cluster_counters_are_shared_between_edges(
    origin, make_node, http, redis_url
) -> None:
    origin.routes["/c"] = Route(headers=CC60)
    shared = policy(name="global", limit=3, window=60, counters="cluster")
    settings = {"ratelimit": {"redis_url": redis_url, "redis_timeout": 1}}
    e1 = await edge_with(make_node, origin, shared, name="e1", **settings)
    e2 = await edge_with(make_node, origin, shared, name="e2", **settings)
    got = [
        (await http(e1, "/c"))[0],
        (await http(e2, "/c"))[0],
        (await http(e1, "/c"))[0],
        (await http(e2, "/c"))[0],
    ]
    assert got == [200, 200, 200, 429]
    status, h, _ = await http(e1, "/c")
    assert status == 429 and h["RateLimit-Policy"] == '"global";q=3;w=60'
    # an edge-counted policy stays per edge even with Redis configured
    assert e1.ratelimiter is not None and e2.ratelimiter is not None
    local = policy(name="local", limit=1, window=60)
    e1.ratelimiter.set_policies([local])
    e2.ratelimiter.set_policies([local])
    assert [(await http(e, "/c"))[0] for e in (e1, e2)] == [200, 200]


async def test_redis_down_falls_back_to_edge_counters(origin, make_node, http) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    origin.routes["/d"] = Route(headers=CC60)
    shared = policy(name="global", limit=2, window=60, counters="cluster")
    edge = await edge_with(
        make_node, origin, shared, ratelimit={"redis_url": f"redis://127.0.0.1:{port}/0"}
    )
    assert await statuses(http, edge, "/d", 3) == [200, 200, 429]
    text = (await http(edge.admin_port, "/metrics"))[2].decode()
    assert 'cdn_ratelimit_redis_errors_total{tier="edge"} 3.0' in text


async def test_policies_removed_limits_lifted(origin, make_node, http) -> None:
    """The gate leaves the hit path when the last policy goes, and comes back."""
    origin.routes["/a"] = Route(headers=CC60)
    edge = await edge_with(make_node, origin, policy(limit=1))
    assert await statuses(http, edge, "/a", 2) == [200, 429]
    assert edge.ratelimiter is not None
    edge.ratelimiter.set_policies([])
    assert edge.ratelimiter.gate not in edge.proxy.gates
    assert await statuses(http, edge, "/a", 3) == [200] * 3
    edge.ratelimiter.set_policies([policy(name="again", limit=1)])
    assert edge.proxy.gates.count(edge.ratelimiter.gate) == 1
    assert await statuses(http, edge, "/a", 2) == [200, 429]
