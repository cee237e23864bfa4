"""The chaos suite in containers (``cdnctl chaos run --compose``): the compose project it
generates, and, where a Docker engine and the image ``docker-compose.yml`` builds are
present, a run of the scenarios that kill, stop and restart containers. CI machines have
no Docker engine: there the run is skipped and the suite runs as local processes
(test_chaos_suite.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from control_plane.chaos import compose
from control_plane.chaos.topology import build

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_runs_each_process_on_the_host_network(tmp_path: Path) -> None:
    topo = build(tmp_path, "127.0.5")
    procs = list(topo.procs.values())
    doc = compose.compose_file(procs, tmp_path, "tiered-cdn:test")
    assert set(doc["services"]) == set(topo.procs)
    for p in procs:
        svc = doc["services"][p.name]
        assert svc["image"] == "tiered-cdn:test" and svc["network_mode"] == "host"
        assert svc["command"] == ["python", *p.argv[1:]]  # the image's python, same flags
        assert svc["volumes"] == [f"{tmp_path}:{tmp_path}"]  # configs, content, state
        assert svc["restart"] == "no"  # a killed container stays down until started


def test_compose_target_runs_scenarios(tmp_path: Path) -> None:
    why = compose.missing(compose.DEFAULT_IMAGE)
    if why is not None:
        pytest.skip(f"--compose cannot run here: {why}")
    out = subprocess.run(
        [
            sys.executable, "-m", "control_plane.cli", "chaos", "run", "--compose", "--json",
            "--net", "127.0.6", "--workdir", str(tmp_path),
            "origin-killed", "mid-stopped", "edge-killed",
        ],
        capture_output=True, text=True, timeout=280, cwd=ROOT, check=False,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    results = {r["scenario"]: r for r in lines if "scenario" in r}
    assert set(results) == {"origin-killed", "mid-stopped", "edge-killed"}, out.stderr[-2000:]
    for name, r in results.items():
        assert r["ok"], (name, [c for c in r["checks"] if not c["ok"]])
    assert results["origin-killed"]["numbers"]["errors"] == 0
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=cdn-chaos-127-0-6"],
        capture_output=True, text=True, check=False,
    ).stdout.split()
    assert left == []  # the project is removed whatever happened
