"""``cdnctl`` keys, prewarm, ratelimit, failover, origins, ``purge --wait`` and how it finds
its API key (issue 8), against a live control plane on loopback with fake nodes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cliharness import Cdnctl, add_node, runner, serve_control_plane

from control_plane.launcher import ensure_credentials
from control_plane.stack import load_stack, processes
from control_plane.testing import ADMIN_KEY, NODE_TOKEN, READER_KEY, FakeNode

URL = "http://www.example.test/index.html"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def api(aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("CDN_API_KEY", raising=False)
    state = tmp_path / "state"
    state.mkdir()
    (state / "admin.key").write_text(ADMIN_KEY + "\n")
    monkeypatch.setenv("CDN_STATE_DIR", str(state))  # cdnctl up's admin.key
    return await serve_control_plane(aiohttp_server, tmp_path, retry_interval=0.1)


@pytest.fixture
def cdnctl(api: str, capsys: pytest.CaptureFixture[str]) -> Cdnctl:
    return runner(api, capsys)


async def node(aiohttp_server: Any, cdnctl: Cdnctl, name: str, tier: str, **kw: Any) -> FakeNode:
    return await add_node(aiohttp_server, cdnctl, name, tier, token=NODE_TOKEN, **kw)


async def test_key_from_state_dir_flag_and_env(
    cdnctl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await cdnctl("nodes", "list"))[0] == 0  # the state dir's admin.key
    code, _, err = await cdnctl("nodes", "list", "--key", "wrong")
    assert code == 1 and "401: invalid or revoked API key" in err
    monkeypatch.setenv("CDN_API_KEY", READER_KEY)
    assert (await cdnctl("nodes", "list"))[0] == 0
    code, _, err = await cdnctl("purge", "--all")
    assert code == 1 and "403" in err and len(err.splitlines()) == 1
    monkeypatch.delenv("CDN_API_KEY")
    monkeypatch.setenv("CDN_STATE_DIR", "/nonexistent")
    code, _, err = await cdnctl("status")
    assert code == 1 and "no key: use --key, $CDN_API_KEY or run cdnctl up" in err


async def test_keys_commands(cdnctl: Any) -> None:
    code, out, _ = await cdnctl("keys", "create", "ci-bot", "--role", "purger")
    assert code == 0 and "not shown again" in out
    key = out.splitlines()[1]
    key_id = out.split()[1]
    assert key.startswith(f"cdn_{key_id}.")
    code, out, _ = await cdnctl("purge", "--all", "--key", key)
    assert code == 0
    code, out, _ = await cdnctl("keys", "list")
    assert out.splitlines()[1].split()[:3] == [key_id, "ci-bot", "purger"]
    assert (await cdnctl("keys", "revoke", key_id))[1] == f"key {key_id} (ci-bot) revoked\n"
    code, _, err = await cdnctl("purge", "--all", "--key", key)
    assert code == 1 and "401" in err
    code, out, _ = await cdnctl("keys", "list", "--json")
    assert json.loads(out)["keys"][0]["revoked_at"] is not None
    code, _, err = await cdnctl("keys", "revoke", "000000000000")
    assert code == 1 and "404" in err


async def test_purge_wait_shows_progress_until_acked(cdnctl: Any, aiohttp_server: Any) -> None:
    edge = await node(aiohttp_server, cdnctl, "edge1", "edge", fail=True)

    async def recover() -> None:
        await asyncio.sleep(0.3)
        edge.fail = False

    task = asyncio.create_task(recover())
    code, out, err = await cdnctl("purge", URL, "--wait", "--progress", "--timeout", "10")
    await task
    assert code == 0, out + err
    assert "0/1 nodes acked" in err and "1/1 nodes acked" in err and "#" * 30 in err
    assert "completed" in out and "edge1  edge  acked" in out
    edge.fail = True
    code, out, _ = await cdnctl("purge", URL, "--wait", "--timeout", "0.3", "--json")
    assert code == 1 and json.loads(out)["state"] == "partial"


async def test_prewarm_command(cdnctl: Any, aiohttp_server: Any) -> None:
    mid = await node(aiohttp_server, cdnctl, "mid1", "mid")
    edge = await node(aiohttp_server, cdnctl, "edge1", "edge")
    code, out, _ = await cdnctl("prewarm", URL, "--tier", "mid")
    assert code == 0 and "prewarmed 1 URLs on tiers mid" in out and "stored 1/1" in out
    assert mid.prewarms == [[URL]] and edge.prewarms == []
    code, _, err = await cdnctl("prewarm")
    assert code == 1 and "give URLs or --sitemap" in err
    code, _, err = await cdnctl("prewarm", "/relative")
    assert code == 1 and "urls.0" in err


async def test_ratelimit_commands(cdnctl: Any) -> None:
    code, out, _ = await cdnctl(
        "ratelimit", "add", "api", "--limit", "100", "--window", "60", "--by", "api_key",
        "--host", "www.example.test", "--path-prefix", "/api/", "--shadow",
    )  # fmt: skip
    assert code == 0 and out.startswith("policy api added: 100 requests per 60 s by api_key")
    code, out, _ = await cdnctl("ratelimit", "update", "api", "--enforce", "--limit", "5")
    assert code == 0 and "5 requests per 60 s" in out and "(enforce," in out
    code, out, _ = await cdnctl("ratelimit", "list")
    assert out.splitlines()[1].split() == [
        "api", "api_key", "www.example.test/api/", "5/60s", "enforce", "edge",
    ]  # fmt: skip
    code, _, err = await cdnctl("ratelimit", "add", "bad", "--limit", "0", "--window", "1")
    assert code == 1 and "limit" in err
    code, _, err = await cdnctl("ratelimit", "add", "nolimit")
    assert code == 1 and "--limit and --window" in err
    assert (await cdnctl("ratelimit", "remove", "api"))[1] == "policy api removed\n"
    code, _, err = await cdnctl("ratelimit", "remove", "api")
    assert code == 1 and "no rate-limit policy named 'api'" in err


async def test_failover_and_origins(cdnctl: Any, aiohttp_server: Any) -> None:
    await node(aiohttp_server, cdnctl, "origin", "origin")
    code, out, _ = await cdnctl("failover")
    assert code == 0 and out.startswith("failover not forced")
    code, out, _ = await cdnctl("failover", "on", "--reason", "origin db down")
    assert code == 0 and "FORCED" in out and "origin db down" in out
    code, out, _ = await cdnctl("origins")
    assert "FORCED" in out and "only changes on a cache miss" in out
    assert out.splitlines()[3].startswith("origin")
    code, out, _ = await cdnctl("failover", "off", "--json")
    assert json.loads(out)["forced"] is False


def test_launcher_credentials_and_argv(tmp_path: Path) -> None:
    creds = ensure_credentials(tmp_path / "run")
    assert (creds.admin_key_file.stat().st_mode & 0o777) == 0o600
    again = ensure_credentials(tmp_path / "run")
    assert again == creds  # kept across restarts: cdnctl's key stays valid
    stack, base = load_stack(ROOT / "configs" / "stack.yaml")
    procs = {p.name: p for p in processes(stack, base, tmp_path / "run", credentials=creds)}
    cp = procs["control"].argv
    assert cp[cp.index("--admin-key-file") + 1] == str(creds.admin_key_file)
    assert cp[cp.index("--control-token-file") + 1] == str(creds.node_token_file)
    edge = procs["edge1"].argv
    assert edge[edge.index("--control-plane") + 1] == "http://127.0.0.1:9000"
    assert edge[edge.index("--control-token-file") + 1] == str(creds.node_token_file)
    router = procs["router"]
    assert "--control-plane" not in router.argv and creds.reader_key not in " ".join(router.argv)
    assert router.env["CDN_ROUTER__CONTROL_PLANE__URL"].startswith("http://router:")
    plain = {p.name: p for p in processes(stack, base, tmp_path / "run")}
    assert (
        "--control-plane" in plain["router"].argv and "--control-plane" not in plain["edge1"].argv
    )


async def test_origin_announce(
    api: str, cdnctl: Any, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from origin import announce

    edge = await node(aiohttp_server, cdnctl, "edge1", "edge")
    code = await asyncio.to_thread(announce.main, ["--api", api, URL])
    out, _ = capsys.readouterr()
    assert code == 0 and "announced 1 URLs: purge complete, prewarm ok" in out
    assert edge.calls[0]["value"] == URL and edge.prewarms == [[URL]]
    code = await asyncio.to_thread(announce.main, ["--api", api, "/not-absolute"])
    assert code == 1 and "urls.0" in capsys.readouterr().err
