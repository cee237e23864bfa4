"""Automatic origin failover (control_plane.origin_watch, issue 9): the control plane
forces serve-from-cache on every mid tier while the origin is down and lifts it when the
origin is back; an operator's choice always wins. Rounds are driven by calling
``watch_once`` (no timers), except in the last test, which runs the real task."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from cdn_core.metrics import new_registry
from control_plane.app import create_app
from control_plane.config import ControlPlaneConfig, FailoverConfig
from control_plane.origin_watch import OriginWatch, judge, watch_once
from control_plane.testing import ADMIN, NODE_TOKEN, auth_config, register_fake

UP = {"url": "http://127.0.0.1:18080", "up": True, "failures": 0, "fetches": 5}


def make_config(tmp_path: Path, db: str, **failover: Any) -> ControlPlaneConfig:
    return ControlPlaneConfig(
        db=db,
        status_timeout=0.5,
        auth=auth_config(tmp_path),
        failover=FailoverConfig(**{"auto": False, "fall": 2, "rise": 2, **failover}),
    )


@pytest.fixture
async def cp(aiohttp_client: Any, tmp_path: Path, cp_db: str) -> TestClient:
    return await aiohttp_client(
        create_app(make_config(tmp_path, cp_db), registry=new_registry()), headers=ADMIN
    )


fake = register_fake  # serve a fake node and register it


async def failover(cp: TestClient) -> dict[str, Any]:
    resp = await cp.get("/v1/origins")
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


async def rounds(cp: TestClient, n: int) -> list[str | None]:
    app: web.Application = cp.server.app
    return [await watch_once(app) for _ in range(n)]


# -- the verdict ------------------------------------------------------------------------
def test_judge() -> None:
    healthy = {"healthy": True}
    down = {"healthy": False, "error": "connection refused"}
    mid_up = {"status": {"upstreams": [UP]}}
    mid_down = {"status": {"upstreams": [{**UP, "up": False}]}}
    assert judge([], [])[0] is None
    assert judge([healthy], [mid_up]) == (False, "origin healthy")
    failing, why = judge([down], [mid_up])
    assert failing and "connection refused" in why
    # Health check passes but the mid tiers see 5xx / refusals on real traffic.
    failing, why = judge([healthy], [mid_down, mid_down])
    assert failing and "no mid tier reaches" in why
    assert judge([healthy], [mid_down, mid_up])[0] is False
    assert judge([], [{"status": None}])[0] is None  # an unreachable mid is no evidence


def test_watch_hysteresis() -> None:
    w = OriginWatch(fall=2, rise=3)
    assert [w.observe(f, "", float(i)) for i, f in enumerate([False] * 3)] == [None, None, "up"]
    assert w.observe(True, "x", 3.0) is None
    assert w.observe(False, "", 4.0) is None  # one bad round is not enough
    assert [w.observe(True, "gone", 5.0), w.observe(True, "gone", 6.0)] == [None, "down"]
    assert w.to_json() == {"state": "down", "reason": "gone", "since": 6.0, "rise_needed": 3}
    assert w.observe(None, "", 7.0) is None  # no evidence resets the streak
    assert [w.observe(False, "", 8.0 + i) for i in range(3)] == [None, None, "up"]


def test_flapping_origin_backs_off() -> None:
    """Lifting failover is a trial; an origin that falls again at once must prove itself
    over twice as many rounds next time, and an origin that stays up resets that."""
    w = OriginWatch(fall=1, rise=2)
    t = 0.0

    def run(*rounds: bool) -> list[str | None]:
        nonlocal t
        out = []
        for failing in rounds:
            t += 1.0
            out.append(w.observe(failing, "", t))
        return out

    assert run(True) == ["down"]
    assert run(False, False) == [None, "up"]
    assert run(True) == ["down"]  # fell again 1 s after rising
    assert w.rise_needed == 4
    assert run(False, False, False, False) == [None, None, None, "up"]
    assert run(True) == ["down"] and w.rise_needed == 8
    assert run(*[False] * 8) == [None] * 7 + ["up"]
    run(*[False] * 31)  # stays up past the flap window
    assert w.rise_needed == 2


# -- against the control plane ----------------------------------------------------------
async def test_origin_down_forces_failover_and_back_lifts_it(
    cp: TestClient, aiohttp_server: Any
) -> None:
    origin = await fake(cp, aiohttp_server, "origin", "origin")
    await fake(cp, aiohttp_server, "mid1", "mid", status={"upstreams": [UP]})
    assert await rounds(cp, 2) == [None, "up"]
    assert (await failover(cp))["failover"]["forced"] is False
    origin.fail = True
    assert await rounds(cp, 2) == [None, "down"]
    data = await failover(cp)
    assert data["failover"]["forced"] is True and data["failover"]["auto"] is True
    assert "no origin passes its health check" in data["failover"]["reason"]
    assert data["watch"]["state"] == "down" and data["watch"]["since"]
    hb = await cp.post(
        "/v1/nodes/mid1/heartbeat",
        json={"tier": "mid", "host": "127.0.0.1", "port": 1, "admin_url": "http://127.0.0.1:1"},
        headers={"Authorization": f"Bearer {NODE_TOKEN}"},
    )
    assert (await hb.json())["failover"]["forced"] is True  # what the mid tiers learn
    metrics = await (await cp.get("/metrics")).text()
    assert "cdn_origin_up 0.0" in metrics and "cdn_failover_forced 1.0" in metrics
    origin.fail = False
    assert await rounds(cp, 2) == [None, "up"]
    assert (await failover(cp))["failover"] == {
        "forced": False, "auto": False, "reason": None, "since": None, "services": {},
    }


async def test_five_hundreds_seen_by_the_mid_tiers_count(
    cp: TestClient, aiohttp_server: Any
) -> None:
    await fake(cp, aiohttp_server, "origin", "origin")  # its health check passes
    mid = await fake(cp, aiohttp_server, "mid1", "mid", status={"upstreams": [UP]})
    mid.status = {"upstreams": [{**UP, "up": False, "failures": 7}]}
    assert await rounds(cp, 2) == [None, "down"]
    assert "no mid tier reaches" in (await failover(cp))["failover"]["reason"]


async def test_the_operator_wins(cp: TestClient, aiohttp_server: Any) -> None:
    origin = await fake(cp, aiohttp_server, "origin", "origin")
    # A manual failover is never lifted by the watch.
    await cp.put("/v1/origins/failover", json={"forced": True, "reason": "maintenance"})
    assert await rounds(cp, 2) == [None, "up"]
    state = (await failover(cp))["failover"]
    assert state["forced"] is True and state["auto"] is False and state["reason"] == "maintenance"
    await cp.put("/v1/origins/failover", json={"forced": False})
    # Turned off by the operator while the origin is down: stays off until its next fall.
    origin.fail = True
    assert await rounds(cp, 2) == [None, "down"]
    await cp.put("/v1/origins/failover", json={"forced": False})
    assert await rounds(cp, 3) == [None, None, None]
    assert (await failover(cp))["failover"]["forced"] is False


async def test_the_watch_task_runs_on_its_own(aiohttp_client: Any, tmp_path: Path,
                                              aiohttp_server: Any, cp_db: str) -> None:
    config = make_config(tmp_path, cp_db, auto=True, interval=0.05)
    cp = await aiohttp_client(create_app(config, registry=new_registry()), headers=ADMIN)
    await fake(cp, aiohttp_server, "origin", "origin", fail=True)
    for _ in range(200):  # bounded: 2 failing rounds of 0.05 s, with margin
        if (await failover(cp))["failover"]["forced"]:
            break
        await asyncio.sleep(0.02)
    assert (await failover(cp))["failover"]["auto"] is True
