"""The chaos suite of issue 9, run the way operators run it: ``cdnctl chaos run --json``
starts a chaos stack of its own (loopback 127.0.3.0/24), runs every scenario and stops it.

One run serves every test of this module (one stack start, about two minutes on two
cores); each test checks one scenario's numbers. The runner runs in a process group of
its own, killed whole at the end, so no process outlives the tests, whatever happens.
Checks that fail because of a known bug of the node runtime are split out and marked
``xfail(strict=True)``, so that fixing the bug turns them into failures to un-mark.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(330)]

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 300

SCENARIOS = [
    "origin-killed",
    "origin-slow",
    "origin-500",
    "mid-killed",
    "mid-stopped",
    "mid-link-reset",
    "edge-killed",
    "router-restarted",
    "control-killed-during-purge",
    "control-replica-killed",
    "hot-key",
    "child-crashed",
    "edge-stopped-during-activation",
]
HERD = "failing origin asked at most once per key per expiry (serve-stale mode)"
SECRETS = "no credential in any log or admin /status"
# Checks also tested on their own below (they guard fixed bugs: a 5xx origin hammered by
# stale keys; the router's key shown in its log and /status).
KNOWN = {("origin-500", HERD), ("control-killed-during-purge", SECRETS)}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("chaos")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "control_plane.cli",
            "chaos",
            "run",
            "--json",
            "--workdir",
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"cdnctl chaos run took over {RUN_TIMEOUT} s:\n{out}\n{err}")
    finally:
        # whatever is left of its process group (nothing, when the runner stopped its stack)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    found = {r["scenario"]: r for r in lines if "scenario" in r}
    summary = next((r["summary"] for r in lines if "summary" in r), None)
    if summary is None:
        pytest.fail(f"cdnctl chaos run gave no summary (exit {proc.returncode}):\n{out}\n{err}")
    print(json.dumps(summary))
    return found


def _failed(result: dict[str, Any], only: str | None = None) -> list[dict[str, Any]]:
    """Failed checks: those named ``only``, else all but the known bugs."""
    return [
        c
        for c in result["checks"]
        if not c["ok"]
        and (c["name"] == only if only else (result["scenario"], c["name"]) not in KNOWN)
    ]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(results: dict[str, dict[str, Any]], name: str) -> None:
    assert name in results, f"scenario {name} did not run"
    r = results[name]
    assert r["checks"], "no checks recorded"
    assert not _failed(r), json.dumps(r, indent=1)


def test_origin_answering_500_is_not_hammered(results: dict[str, dict[str, Any]]) -> None:
    r = results["origin-500"]
    assert any(c["name"] == HERD for c in r["checks"]), "check not recorded"
    assert not _failed(r, HERD), json.dumps(r["numbers"])


def test_no_secret_in_router_logs_or_status(results: dict[str, dict[str, Any]]) -> None:
    r = results["control-killed-during-purge"]
    assert any(c["name"] == SECRETS for c in r["checks"]), "check not recorded"
    assert not _failed(r, SECRETS), json.dumps(r["checks"])


def test_list_names_every_scenario() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "control_plane.cli", "chaos", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=True,
    ).stdout
    assert [s["name"] for s in json.loads(out)] == SCENARIOS


def test_bad_arguments_exit_2() -> None:
    for args in (["nope"], ["--net", "10.0.0"], ["--image", "x:1"]):
        r = subprocess.run(
            [sys.executable, "-m", "control_plane.cli", "chaos", "run", *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        assert r.returncode == 2 and r.stderr.startswith("error:"), r.stderr
