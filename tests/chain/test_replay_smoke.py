"""The trace replay's CI smoke test (issue 23): 2,000 requests of each trace in
shared/data through ``cdnctl up``'s stack, with the origin in synthetic-object mode and
clients resolving through the DNS router. ``--check`` fails the run on inconsistent
numbers; here the written results are checked too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(300)


def test_a_tiny_replay_through_our_stack_adds_up(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.replay", "--requests", "2000", "--cache", "0.01",
         "--stacks", "ours", "--check", "--out", str(out), "--run-dir", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [results] = out.glob("replay-*.json")
    rows = json.loads(results.read_text())["rows"]
    assert {r["trace"] for r in rows} == {"socialmedia", "download"}
    for r in rows:
        assert r["requests"] == r["complete"] == 2000 and not r["errors"]
        assert 0 <= r["edge_ohr"] <= r["cdn_ohr"] < 1
        assert 0 <= r["cdn_bhr"] < 1 and r["origin_bytes"] <= r["requested_bytes"]
        # Every client resolved through the router: 64 clients, answers kept for the TTL.
        assert r["dns_queries"] >= 1 and len(r["by_edge"]) == 3
        assert r["cpu_s"] > 0 and r["peak_rss_bytes"] > 0
    assert (out / results.name.replace(".json", ".png")).stat().st_size > 0
    assert "| socialmedia | 1.0% | ours |" in results.with_suffix(".md").read_text()
