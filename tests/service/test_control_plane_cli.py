"""``cdnctl`` API commands (control_plane.cli) against a live control plane on
loopback with fake nodes. The CLI blocks (urllib), so it runs in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cliharness import Cdnctl, add_node, parse, runner, serve_control_plane

from control_plane.testing import ADMIN_KEY

URL = "http://www.example.test/index.html"


@pytest.fixture
async def api(aiohttp_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CDN_API_KEY", ADMIN_KEY)
    return await serve_control_plane(aiohttp_server, tmp_path, retry_interval=30)


@pytest.fixture
def cdnctl(api: str, capsys: pytest.CaptureFixture[str]) -> Cdnctl:
    return runner(api, capsys)


serve = add_node  # serve a fake node and register it with `cdnctl nodes add`


async def test_nodes_add_list_remove(cdnctl: Any, aiohttp_server: Any) -> None:
    await serve(aiohttp_server, cdnctl, "mid1", "mid")
    await serve(aiohttp_server, cdnctl, "edge1", "edge")
    code, out, _ = await cdnctl("nodes", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["NAME", "TIER", "ADDRESS"]
    assert [line.split()[0] for line in lines[1:]] == ["edge1", "mid1"]
    code, out, _ = await cdnctl("nodes", "list", "--tier", "mid")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["mid1"]
    assert (await cdnctl("nodes", "remove", "mid1"))[:2] == (0, "node mid1 removed\n")
    code, out, err = await cdnctl("nodes", "remove", "mid1")
    assert code == 1 and out == ""
    assert err == "cdnctl: control plane answered 404: no node named 'mid1'\n"


async def test_purge_all_acked_exits_0(cdnctl: Any, aiohttp_server: Any) -> None:
    await serve(aiohttp_server, cdnctl, "edge1", "edge")
    await serve(aiohttp_server, cdnctl, "mid1", "mid")
    code, out, _ = await cdnctl("purge", URL)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("purge ") and f"url {URL}" in lines[0]
    assert [line.split()[:3] for line in lines[1:3]] == [
        ["mid1", "mid", "acked"],
        ["edge1", "edge", "acked"],
    ]
    assert lines[3].startswith("completed ") and "(2/2 nodes acked)" in lines[3]


async def test_purge_with_a_failed_node_exits_1(cdnctl: Any, aiohttp_server: Any) -> None:
    await serve(aiohttp_server, cdnctl, "edge1", "edge", fail=True)
    code, out, _ = await cdnctl("purge", "--prefix", "http://www.example.test/img/", "--soft")
    assert code == 1
    assert "edge1" in out and "failed" in out and "HTTP 500" in out
    assert "not complete: 0/1 nodes acked (state partial)" in out


async def test_purge_several_values_and_json(cdnctl: Any) -> None:
    code, out, _ = await cdnctl("purge", "--tag", "a", "b", "--json")
    assert code == 0 and out.count('"type": "tag"') == 2
    code, out, _ = await cdnctl("purge", "--all")
    assert code == 0 and "no mid-tier or edge nodes registered" in out


async def test_purge_usage_and_api_errors(cdnctl: Any) -> None:
    code, _, err = await cdnctl("purge", "--all", URL)
    assert code == 2 and "--all takes no URL" in err
    code, _, err = await cdnctl("purge")
    assert code == 2 and "at least one URL" in err
    code, out, err = await cdnctl("purge", "/index.html")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert "400" in err and "absolute http(s) URL" in err


async def test_unreachable_control_plane_is_one_line(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    for argv in (["purge", URL], ["status"], ["nodes", "list"]):
        args = parse(f"http://127.0.0.1:{unused_tcp_port}", argv)
        code = await asyncio.to_thread(args.func, args)
        out, err = capsys.readouterr()
        assert code == 1 and out == ""
        assert err.startswith("cdnctl: cannot reach the control plane at http://127.0.0.1:")
        assert len(err.splitlines()) == 1


async def test_status_table(cdnctl: Any, aiohttp_server: Any) -> None:
    cache = {"entries": 3, "bytes": 2048, "hits": 7, "misses": 2}
    await serve(aiohttp_server, cdnctl, "edge1", "edge", status={"cache": cache, "restarts": 2})
    await serve(aiohttp_server, cdnctl, "origin", "origin", status={"requests": 11})
    code, out, _ = await cdnctl("status")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "NAME", "TIER", "ADDRESS", "HEALTHY", "RESTARTS", "ENTRIES", "BYTES", "HITS", "MISSES",
        "REQUESTS",
    ]  # fmt: skip
    edge = rows[0].split()
    assert (
        edge[0] == "edge1"
        and edge[3] == "yes"
        and edge[4:] == ["2", "3", "2.0", "KiB", "7", "2", "-"]
    )
    assert rows[1].split()[0] == "origin" and rows[1].split()[-1] == "11"
    code, out, _ = await cdnctl("status", "--json")
    assert code == 0 and '"healthy": true' in out


async def test_status_exits_1_when_a_node_is_unhealthy(cdnctl: Any, aiohttp_server: Any) -> None:
    await serve(aiohttp_server, cdnctl, "mid1", "mid", fail=True)
    code, out, _ = await cdnctl("status")
    assert code == 1 and "NO" in out and "mid1: " in out
