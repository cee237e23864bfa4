"""A hot key expiring under load: request collapsing at every tier."""

from __future__ import annotations

import math

from control_plane.chaos.scenarios.base import (
    Run,
    scenario,
)
from control_plane.chaos.topology import (
    MAX_AGE,
)


@scenario(
    "hot-key",
    "one hot key expiring under load at every edge: origin fetches <= expiries + 1 (request "
    "collapsing at every tier)",
)
async def hot_key(run: Run) -> None:
    path = run.files(1, "hot")[0]
    edge_fetches = await run.edge_upstream_fetches()
    stats = await run.load(
        [path], max_seconds=2.5 * MAX_AGE, max_requests=1500, concurrency=20, rate=250
    )
    edge_fetches = await run.edge_upstream_fetches() - edge_fetches
    origin = (await run.origin_counts()).get(path, 0)
    expiries = math.floor(stats.seconds / MAX_AGE)
    run.record("", stats)
    run.numbers["expiries"] = expiries
    run.numbers["origin_fetches"] = origin
    run.numbers["edge_to_mid_fetches"] = edge_fetches
    n_edges = len(run.topo.edges)
    run.check("0 client errors", stats.errors == 0)
    run.check("origin fetches <= expiries + 1", origin <= expiries + 1, f"{origin} fetches")
    # An edge's cycle is phased by the integer Age it got from the mid, so it may see one
    # expiry more than the mid did.
    run.check(
        "edge->mid fetches <= expiries + 2 per edge",
        edge_fetches <= (expiries + 2) * n_edges,
        f"{edge_fetches} fetches",
    )
