"""Router metrics after known DNS traffic (issue 11): answers by edge and reason, health
state changes and the edge-up gauge, on a fresh registry."""

from __future__ import annotations

from metricsutil import samples, value
from test_router import FakeEdge, admin_get, all_probed, eventually, query, running


async def test_answers_by_edge_and_health_changes() -> None:
    fakes = [await FakeEdge(f"edge{i}").start() for i in (1, 2)]
    try:
        async with running(edges=[fakes[0].edge("192.0.2.1"), fakes[1].edge("192.0.2.2")]) as app:
            await eventually(lambda: all_probed(app))
            for _ in range(3):
                await query(app)
            _, text = await admin_get(app, "/metrics")
            answers = {
                dict(labels)["edge"]: v
                for (name, labels), v in samples(text).items()
                if name == "cdn_dns_answers_total"
            }
            assert set(answers) <= {"edge1", "edge2"} and sum(answers.values()) >= 3
            assert value(text, "cdn_dns_queries_total", transport="udp", rcode="NOERROR") == 3
            assert value(text, "cdn_router_edge_up", edge="edge2") == 1
            fakes[1].status = 503

            async def down() -> bool:
                _, t = await admin_get(app, "/metrics")
                return value(t, "cdn_router_edge_up", edge="edge2") == 0

            await eventually(down)
            _, text = await admin_get(app, "/metrics")
            assert value(text, "cdn_router_health_changes_total", edge="edge2", state="down") == 1
            assert value(text, "cdn_router_edge_up", edge="edge1") == 1
    finally:
        for f in fakes:
            await f.stop()
