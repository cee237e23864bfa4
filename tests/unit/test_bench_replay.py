"""The trace replay's pure parts (bench/replay, issue 23): workload, budgets, send times,
the tally and its consistency checks, the report."""

from __future__ import annotations

import asyncio

import pytest

from bench.hit_ratio.traces import Trace
from bench.replay import report
from bench.replay.resolve import FixedEdges, client_subnet
from bench.replay.tally import OriginCounts, Tally, edge_hit, problems, summary
from bench.replay.workload import budgets, build, object_path, scaled, send_times


def trace() -> Trace:
    return Trace("t", [1, 2, 1, 3, 1], [1000, 5000, 1000, 250_000, 1000], [0, 0, 0, 1, 3])


def test_build_scales_sizes_and_draws_the_same_clients_every_time() -> None:
    w = build(trace(), size_scale=0.1, clients=8)
    assert w.sizes == [100, 500, 100, 25_000, 100]
    assert w.distinct_bytes() == 100 + 500 + 25_000
    assert w.requested_bytes == 25_800
    assert w.clients == build(trace(), size_scale=0.1, clients=8).clients
    assert all(0 <= c < 8 for c in w.clients)
    assert scaled(1000, 0.0001) == 1  # never an empty object
    for bad in ({"size_scale": 0}, {"size_scale": 2}, {"clients": 0}):
        with pytest.raises(ValueError):
            build(trace(), **{"size_scale": 0.1, "clients": 8, **bad})
    with pytest.raises(ValueError, match="timestamps"):
        build(Trace("z", [1], [1]), size_scale=1, clients=1)


def test_budgets_split_like_the_shipped_defaults() -> None:
    b = budgets(11_000_000, 0.1, edges=3, mids=2, edge_default=256, mid_default=1024)
    assert b.total == 1_100_000
    # 3 x 256 : 2 x 1024 = 3 : 8 of the total.
    assert b.edge_bytes == 100_000 and b.mid_bytes == 400_000
    assert budgets(10, 0.001, edges=3, mids=2, edge_default=1, mid_default=1).edge_bytes == 1
    with pytest.raises(ValueError):
        budgets(10, 0, edges=3, mids=2, edge_default=1, mid_default=1)
    with pytest.raises(ValueError):
        budgets(10, 0.5, edges=0, mids=2, edge_default=1, mid_default=1)


def test_send_times_spread_each_second_and_keep_the_mean_rate() -> None:
    times = [0, 0, 0, 0, 1, 1, 3, 3]
    offsets = send_times(times, rate=8.0)
    assert offsets[0] == 0 and offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)  # requests of one second are spread
    # 8 requests at 8/s: the span (last second included) is 1 s.
    assert offsets[-1] < 1.0 and offsets[-1] > 0.8
    assert send_times([], 5) == []
    with pytest.raises(ValueError):
        send_times(times, 0)


def test_edge_hit_reads_the_member_nearest_the_client() -> None:
    assert edge_hit("mid1; fwd=miss; stored, edge2; hit")
    assert not edge_hit("mid1; hit, edge2; fwd=miss")
    assert edge_hit("nginx-edge; hit")
    assert not edge_hit("") and not edge_hit("edge1; fwd=uri-miss; detail=hit")


def test_tally_summary_and_problems() -> None:
    t = Tally()
    t.record(edge="a", size=100, status=200, received=100, cache_status="e; hit", latency=0.001)
    t.record(edge="b", size=300, status=200, received=300, cache_status="e; fwd=miss",
             latency=0.003)
    origin = OriginCounts(requests=1, bytes=300)
    s = summary(t, origin, wall=1.0, cpu=0.5, peak_rss=10)
    assert s["edge_ohr"] == 0.5 and s["edge_bhr"] == 0.25
    assert s["cdn_ohr"] == 0.5 and s["cdn_bhr"] == 0.25
    assert s["requests_per_cpu_s"] == 4 and s["p50_ms"] == 1.0 and s["p99_ms"] == 3.0
    assert problems(t, origin, planned=2, planned_bytes=400) == []
    assert problems(t, origin, planned=3, planned_bytes=400)  # a request went missing
    assert problems(t, OriginCounts(5, 300), planned=2, planned_bytes=400)
    assert problems(t, OriginCounts(1, 10_000), planned=2, planned_bytes=400)
    assert problems(t, OriginCounts(0, 0), planned=2, planned_bytes=400)
    # Two distinct objects, fetched once each at least from cold caches:
    assert problems(t, origin, planned=2, planned_bytes=400, catalogue=OriginCounts(2, 400))
    assert not problems(t, OriginCounts(2, 400), planned=2, planned_bytes=400,
                        catalogue=OriginCounts(2, 400))
    t.record(edge="a", size=100, status=200, received=99, cache_status="", latency=0.1)
    t.failed(edge="?", size=5, kind="ClientOSError")
    assert t.errors == {"wrong size": 1, "ClientOSError": 1}
    assert any("failed" in p for p in problems(t, origin, planned=4, planned_bytes=505))


def test_clients_get_distinct_subnets_and_a_stable_edge() -> None:
    assert client_subnet(0) == "10.0.0.0/24" and client_subnet(257) == "10.1.1.0/24"
    edges = FixedEdges(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    picks = [asyncio.run(edges.edge_for(c)) for c in range(64)]
    assert set(picks) == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
    assert picks == [asyncio.run(edges.edge_for(c)) for c in range(64)]
    assert object_path("/obj/", 7, 969) == "/obj/7/969"


def rows() -> list[dict]:
    out = []
    for stack, ohr in (("ours", 0.8), ("nginx", 0.5)):
        t = Tally()
        t.record(edge="a", size=100, status=200, received=100, cache_status="e; hit",
                 latency=0.002)
        r = summary(t, OriginCounts(1, 50), wall=1, cpu=1, peak_rss=2 << 20)
        r.update(trace="download", stack=stack, cache_fraction=0.01, budget_bytes=100,
                 peak_stored_bytes=800 if stack == "nginx" else None, size_scale=0.1,
                 mode="closed c=32", cdn_ohr=ohr)
        out.append(r)
    return out


def test_report_table_ratios_and_plot(tmp_path) -> None:
    md = report.markdown(rows(), ["--requests", "10"])
    assert "| download | 1.0% | ours |" in md and "| 8.0x |" in md
    assert "| download | 1.0% | 1.60x |" in md  # ours / nginx object hit ratio
    assert "held/budget=1x" in report.line(rows()[0])
    report.plot(rows(), tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
