"""Sampled JSON access logs of a caching node (issue 11): the line format after known
traffic through a real edge and mid tier, the sampler's rate and cost, rotation."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from nodeharness import Route

from cdn_core.node.observe import accesslog
from cdn_core.node.observe.accesslog import AccessLog, LoggedConnection
from cdn_core.node.settings.observe import AccessLogSettings

CC60 = {"Cache-Control": "max-age=60"}
FIELDS = {"time", "node", "tier", "client", "method", "proto", "url", "status", "bytes", "cache_status",
          "upstream_time", "total_time"}


def lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def wait_lines(path, n: int) -> list[dict]:
    async with asyncio.timeout(2):
        while len(found := lines(path)) < n:
            await asyncio.sleep(0.01)
    return found


async def test_every_request_logged_through_two_tiers(origin, make_node, http, tmp_path):
    origin.routes["/a.css"] = Route(headers=CC60, body=b"b" * 300, delay=0.05)
    mid_log, edge_log = tmp_path / "mid.log", tmp_path / "edge.log"
    mid = await make_node([origin.url], tier="mid", name="mid1",
                          access_log={"sample": 1, "path": str(mid_log)})
    edge = await make_node([f"http://127.0.0.1:{mid.port}"], name="edge1",
                           access_log={"sample": 1.0, "path": str(edge_log)})
    await http(edge, "/a.css?v=1")
    await http(edge, "/a.css?v=1")
    await http(edge, "/a.css?v=1", method="HEAD")
    miss, hit, head = await wait_lines(edge_log, 3)
    assert set(miss) == FIELDS
    assert miss["node"] == "edge1" and miss["tier"] == "edge" and miss["client"] == "127.0.0.1"
    assert miss["method"] == "GET" and miss["url"] == "http://www.example.test/a.css?v=1"
    assert (miss["status"], miss["bytes"]) == (200, 300)
    # Cache-Status of both tiers, this node's last (RFC 9211)
    assert miss["cache_status"].startswith("mid1; fwd=uri-miss")
    assert ", edge1; fwd=uri-miss; fwd-status=200; stored" in miss["cache_status"]
    assert 0.04 < miss["upstream_time"] <= miss["total_time"] < 2
    assert miss["time"].endswith("Z") and miss["time"][10] == "T"
    assert ", edge1; hit; ttl=" in hit["cache_status"] and hit["upstream_time"] is None
    assert (hit["status"], hit["bytes"]) == (200, 300) and hit["total_time"] < 0.05
    assert (head["method"], head["bytes"]) == ("HEAD", 0)
    (mid_miss,) = await wait_lines(mid_log, 1)
    assert mid_miss["node"] == "mid1" and mid_miss["cache_status"].startswith("mid1; fwd=uri-miss")


async def test_statuses_from_the_sent_head(origin, make_node, http, tmp_path):
    origin.routes["/e"] = Route(headers={**CC60, "ETag": '"v1"'})
    log = tmp_path / "edge.log"
    edge = await make_node([origin.url], access_log={"sample": 1, "path": str(log)})
    await http(edge, "/e")
    await http(edge, "/e", If_None_Match='"v1"')
    await http(edge, "/nothing-here")
    found = await wait_lines(log, 3)
    assert [(x["status"], x["bytes"]) for x in found][1:] == [(304, 0), (404, len(b"no such route"))]


async def test_sample_zero_never_wraps(origin, make_node, http, tmp_path, monkeypatch):
    origin.routes["/a"] = Route(headers=CC60)
    log = tmp_path / "edge.log"
    edge = await make_node([origin.url], access_log={"sample": 0, "path": str(log)})
    calls = []
    monkeypatch.setattr(edge.proxy.access_log, "wrap", lambda *a: calls.append(a))
    for _ in range(5):
        assert (await http(edge, "/a"))[0] == 200
    assert calls == [] and not log.exists()


class _Conn:
    closed = False

    def write(self, data): ...
    def writelines(self, parts): ...
    def finish(self, keep_alive): ...


def test_sampling_rate_is_random_and_close_to_the_setting(tmp_path):
    log = AccessLog(AccessLogSettings(sample=0.05, path=str(tmp_path / "x.log")),
                    node="e", tier="edge")
    conn = _Conn()
    drawn = [i for i in range(20_000) if log.wrap(object(), conn) is not conn]
    assert 800 < len(drawn) < 1200  # 1000 expected; about 7 standard deviations each side
    gaps = {b - a for a, b in zip(drawn, drawn[1:], strict=False)}
    assert len(gaps) > 10  # not every n-th request
    # a re-entered request (a gate's asynchronous check) is not drawn twice
    wrapped = LoggedConnection(log, object(), conn)
    assert log.wrap(object(), wrapped) is wrapped
    log.close()


def test_sample_one_logs_everything(tmp_path):
    log = AccessLog(AccessLogSettings(sample=1, path=None), node="e", tier="edge")
    conn = _Conn()
    assert all(log.wrap(object(), conn) is not conn for _ in range(100))


def test_settings_are_validated():
    with pytest.raises(ValueError):
        AccessLogSettings(sample=1.5)
    with pytest.raises(ValueError):
        AccessLogSettings.model_validate({"sample": 0.1, "rotate": True})


async def test_file_reopened_after_the_platform_rotates_it(origin, make_node, http, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr(accesslog, "_REOPEN_CHECK_SECONDS", 0.0)
    origin.routes["/a"] = Route(headers=CC60)
    log = tmp_path / "edge.log"
    edge = await make_node([origin.url], access_log={"sample": 1, "path": str(log)})
    await http(edge, "/a")
    await wait_lines(log, 1)
    os.rename(log, tmp_path / "edge.log.1")
    await http(edge, "/a")
    await wait_lines(log, 1)
    assert len(lines(tmp_path / "edge.log.1")) == 1
    edge.proxy.access_log.close()


async def test_stdout_when_no_path(origin, make_node, http, capsys):
    origin.routes["/a"] = Route(headers=CC60)
    edge = await make_node([origin.url], access_log={"sample": 1})
    await http(edge, "/a")
    await asyncio.sleep(0.05)
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert out and out[0]["url"] == "http://www.example.test/a"
