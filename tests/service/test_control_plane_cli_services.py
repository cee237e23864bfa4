"""``cdnctl services`` against a live control plane on loopback (issue 20): apply prints
the diff and makes no version for an unchanged file, a bad file lists every problem with
its path, activate --wait exits 1 while a node has not caught up, and the read commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cliharness import Cdnctl, parse, runner, serve_control_plane

from control_plane.cli.common import request
from control_plane.testing import ADMIN_KEY, NODE_TOKEN

SHOP = {"name": "shop", "domains": ["shop.example.test"],
        "origins": {"servers": [{"url": "http://127.0.0.1:18080"}]}}
HB = {"tier": "edge", "host": "127.0.0.1", "port": 8080, "admin_url": "http://127.0.0.1:9080"}


@pytest.fixture
async def api(aiohttp_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CDN_API_KEY", ADMIN_KEY)
    return await serve_control_plane(aiohttp_server, tmp_path, retry_interval=30)


@pytest.fixture
def cdnctl(api: str, capsys: pytest.CaptureFixture[str]) -> Cdnctl:
    return runner(api, capsys)


def write(tmp_path: Path, document: dict[str, Any], name: str = "shop.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


async def test_apply_diff_unchanged_and_activate(cdnctl: Any, tmp_path: Path) -> None:
    code, out, _ = await cdnctl("services", "apply", write(tmp_path, SHOP))
    assert code == 0 and out.startswith("service shop: version 1 created")
    code, out, _ = await cdnctl("services", "apply", write(tmp_path, SHOP))
    assert out == "service shop: unchanged (version 1)\n"
    code, out, err = await cdnctl("services", "rollback", "shop")
    assert code == 1 and "no earlier active version" in err
    assert (await cdnctl("services", "activate", "shop", "1"))[0] == 0
    changed = {**SHOP, "cache_rules": [{"match": {"path_prefix": "/img/"}, "ttl": 600}]}
    code, out, _ = await cdnctl("services", "apply", write(tmp_path, changed), "--activate")
    assert code == 0
    assert "+ cache_rules[0].match.path_prefix: '/img/'" in out
    assert "active version 2, v2 on 0/0 nodes" in out
    code, out, _ = await cdnctl("services", "list")
    assert out.splitlines()[1].split()[:4] == ["shop", "shop.example.test", "2", "2"]
    code, out, _ = await cdnctl("services", "diff", "shop", "1", "2")
    assert out.splitlines() == ["+ cache_rules[0].match.path_prefix: '/img/'",
                                "+ cache_rules[0].ttl: 600.0"]
    code, out, _ = await cdnctl("services", "versions", "shop", "--json")
    assert [v["active"] for v in json.loads(out)["versions"]] == [False, True]
    code, out, _ = await cdnctl("services", "show", "shop")
    assert "path_prefix: /img/" in out
    code, out, _ = await cdnctl("services", "rollback", "shop")
    assert code == 0 and "active version 1" in out


async def test_a_bad_file_lists_every_problem(cdnctl: Any, tmp_path: Path) -> None:
    bad = {**SHOP, "domains": ["*.com"], "cache_rules": [{"ttl": -5, "colour": 1}]}
    code, out, err = await cdnctl("services", "apply", write(tmp_path, bad))
    assert code == 1 and out == ""
    assert "domains" in err and "cache_rules[0].ttl" in err and "cache_rules[0].colour" in err
    code, _, err = await cdnctl("services", "validate", write(tmp_path, bad))
    assert code == 1 and "3 problem(s)" in err
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    code, _, err = await cdnctl("services", "apply", str(tmp_path / "broken.yaml"))
    assert code == 1 and "not valid YAML" in err
    code, _, err = await cdnctl("services", "apply", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in err


async def test_activate_wait_follows_the_nodes(api: str, cdnctl: Any, tmp_path: Path) -> None:
    await cdnctl("services", "apply", write(tmp_path, SHOP))
    node = {"key": NODE_TOKEN}
    # the CLI's own client, off the event loop the control plane runs on
    await asyncio.to_thread(request, api, "POST", "/v1/nodes/edge1/heartbeat", HB, **node)
    code, _, err = await cdnctl("services", "activate", "shop", "1", "--wait", "--timeout",
                                "0.3")
    assert code == 1 and "waiting for edge1" in err
    await asyncio.to_thread(request, api, "POST", "/v1/nodes/edge1/heartbeat",
                            {**HB, "services": {"shop": 1}}, **node)
    code, out, _ = await cdnctl("services", "activate", "shop", "1", "--wait")
    assert code == 0 and "v1 on 1/1 nodes" in out
    code, out, _ = await cdnctl("services", "delete", "shop")
    assert code == 0 and (await cdnctl("services", "list"))[1].startswith("no services")
    assert parse(api, ["services", "list"]).services_command == "list"
