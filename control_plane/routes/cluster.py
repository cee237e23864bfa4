"""The replicas and their leader: ``GET /v1/cluster`` (any key) and ``GET /v1/readyz``
(public: a load balancer's or Kubernetes' readiness probe).

``/v1/cluster`` answers ``{"self": {...}, "leader": id | null, "lease": {"holder",
"term", "expires_at", "expires_in", ...} | null, "lease_ttl": s, "replicas": [{"id",
"name", "url", "last_seen", "age", "alive", "leader"}]}`` (see
:meth:`control_plane.cluster.Cluster.describe`). ``/v1/readyz`` is 200 ``{"status":
"ready"}`` while this replica's last cluster tick reached the database, else 503 with the
error: a replica that cannot write is taken out of rotation, while ``/v1/healthz`` (the
liveness probe) stays 200 so it is not restarted for the database's outage.
"""

from __future__ import annotations

from aiohttp import web

from control_plane.api import LIVE, ApiError, body_of
from control_plane.auth import PUBLIC, READ, add_route


async def cluster(request: web.Request) -> web.Response:
    found = request.app[LIVE].cluster
    if found is None:
        raise ApiError(503, "control plane is starting")
    return body_of(await found.describe())


async def readyz(request: web.Request) -> web.Response:
    found = request.app[LIVE].cluster
    if found is None:
        raise ApiError(503, "control plane is starting")
    database = "ok" if found.ok is not False else str(found.last_error)
    return body_of({"status": "ready", "leader": found.is_leader, "database": database})


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/cluster", cluster, READ)
    add_route(app, "GET", "/v1/readyz", readyz, PUBLIC)
