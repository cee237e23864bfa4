"""The control plane's in-memory history of the network (issue 11): rates and hit ratios
per tier from successive /status samples, counter resets, health changes, the window."""

from __future__ import annotations

from control_plane.history import StatsHistory, counters


def edge(name: str, hits: int, misses: int, requests: int, healthy: bool = True) -> dict:
    return {
        "name": name, "tier": "edge", "host": "127.0.1.1", "port": 8080, "healthy": healthy,
        "error": None,
        "status": {"requests": requests, "cache": {"entries": 3, "bytes": 300,
                   "requests_by_status": {"hit": hits, "stale": 0, "miss": misses, "pass": 5}}},
    }


def test_rates_and_hit_ratio_per_tier():
    h = StatsHistory(interval=3, window=60)
    h.record(100.0, [edge("e1", 0, 0, 0), edge("e2", 0, 0, 0)])
    assert h.points[-1]["tiers"]["edge"] == {"rps": None, "hit_ratio": None, "healthy": 2,
                                             "nodes": 2}
    h.record(103.0, [edge("e1", 27, 3, 30), edge("e2", 0, 10, 15)])
    tier = h.points[-1]["tiers"]["edge"]
    assert tier["rps"] == 15.0  # (30 + 15) requests in 3 s
    assert tier["hit_ratio"] == 0.675  # 27 hits of 40 lookups (pass excluded)
    e1 = next(n for n in h.nodes if n["name"] == "e1")
    assert (e1["rps"], e1["hit_ratio"], e1["cache_entries"]) == (10.0, 0.9, 3)


def test_restarted_node_counts_from_zero():
    h = StatsHistory(interval=1, window=60)
    h.record(0.0, [edge("e1", 100, 100, 200)])
    h.record(1.0, [edge("e1", 4, 0, 4)])
    assert h.points[-1]["tiers"]["edge"]["rps"] == 4.0
    assert h.points[-1]["tiers"]["edge"]["hit_ratio"] == 1.0


def test_health_changes_are_reported_once():
    h = StatsHistory()
    assert h.record(0.0, [edge("e1", 0, 0, 0)]) == []
    assert h.record(3.0, [edge("e1", 0, 0, 0, healthy=False)]) == [("e1", "edge", False)]
    assert h.record(6.0, [edge("e1", 0, 0, 0, healthy=False)]) == []
    assert h.record(9.0, [edge("e1", 0, 0, 0)]) == [("e1", "edge", True)]


def test_window_and_since():
    h = StatsHistory(interval=1, window=10)
    for t in range(30):
        h.record(float(t), [edge("e1", t, 0, t)])
    assert len(h.points) == 11 and h.points[0]["t"] == 19.0
    assert [p["t"] for p in h.to_json(since=27.0)["points"]] == [28.0, 29.0]


def test_other_tiers():
    router = {"tier": "router", "status": {"edges": [{"answers": 5}, {"answers": 7}]}}
    assert counters("router", router["status"]) == (12.0, 0.0, 0.0)
    assert counters("origin", {"requests": 9, "by_path": {}}) == (9.0, 0.0, 0.0)
    assert counters("edge", None) == (0.0, 0.0, 0.0)
