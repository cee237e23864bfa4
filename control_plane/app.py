"""The control plane's aiohttp application: :func:`create_app`.

Routes live in :mod:`control_plane.routes`; state in :class:`control_plane.store.Store`.
The app's lifecycle (one ``cleanup_ctx``) opens the store, registers the configured seed
nodes, creates the one ``aiohttp.ClientSession`` used to reach nodes, and runs the purge
retry loop; shutdown undoes all of it in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from cdn_core.clock import Clock, SystemClock
from cdn_core.metrics import new_registry
from cdn_core.node.policy.buckets import LocalBuckets
from control_plane import origin_watch
from control_plane.api import CLOCK, CONFIG, LIVE, METRICS, STORE, Live, api_middleware
from control_plane.auth import ACCESS, AUTHN, Authenticator
from control_plane.cluster import Cluster
from control_plane.config import ControlPlaneConfig
from control_plane.guard import API_BUCKETS, auth_middleware
from control_plane.metrics import ControlPlaneMetrics
from control_plane.purge import PurgeFanout
from control_plane.routes import (
    cluster,
    health,
    keys,
    nodes,
    openapi,
    origins,
    prewarm,
    purges,
    ratelimits,
    services,
    signing,
    stats,
    status,
    ui,
)
from control_plane.store import Store

log = logging.getLogger("cdn.control_plane")

# Connections to the nodes' admin ports: bounded, since a purge touches every node at once.
_CONNECTION_LIMIT = 100


def create_app(
    config: ControlPlaneConfig,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """Build the control plane app.

    Args:
        config: settings; ``config.db`` is the SQLite file unless ``store`` is given.
        store: an already opened store; the caller then opens and closes it. By default
            the app opens ``Store(config.db)`` on startup and closes it on cleanup.
        clock: time source for the records' timestamps (default: the system clock).
        registry: Prometheus registry for the metrics (default: a fresh one).
    """
    app = web.Application(
        middlewares=[api_middleware, auth_middleware], client_max_size=config.api.max_body_bytes
    )
    app[CONFIG] = config
    app[ACCESS] = {}
    app[AUTHN] = Authenticator()
    app[API_BUCKETS] = LocalBuckets(10_000)
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = ControlPlaneMetrics(registry if registry is not None else new_registry())
    app[STORE] = store if store is not None else Store(config.db)
    app[LIVE] = Live()
    app.cleanup_ctx.append(_lifecycle(owns_store=store is None))
    for module in (health, keys, nodes, purges, status, prewarm, ratelimits, signing, origins,
                   services, cluster, openapi, stats, ui):
        module.add_routes(app)
    origin_watch.install(app)
    return app


def _lifecycle(*, owns_store: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config, store, live = app[CONFIG], app[STORE], app[LIVE]
        authn = app[AUTHN]
        authn.configure(config.auth)
        if owns_store:
            await store.open()
        session = None
        retry: asyncio.Task[None] | None = None
        beat: asyncio.Task[None] | None = None
        try:
            url = config.cluster.url or f"http://{config.host}:{config.port}"
            live.cluster = Cluster(store, app[CLOCK], authn, config.cluster, name=config.name,
                                   url=url)
            # Before serving: a lone replica (SQLite) leads from the start; keys loaded.
            await live.cluster.tick()
            beat = asyncio.get_running_loop().create_task(live.cluster.run())
            if not authn.has_admin:
                log.warning(
                    "no admin credential: set auth.admin_key_file or $%s to manage keys",
                    config.auth.admin_key_env,
                )
            if authn.node_token is None:
                log.warning("no node token (auth.node_token_file): nodes will refuse purges")
            await _seed_nodes(app)
            # Only ever used to reach the nodes' admin ports: it carries the node token.
            headers = {"Authorization": f"Bearer {authn.node_token}"} if authn.node_token else {}
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=_CONNECTION_LIMIT), headers=headers
            )
            live.session = session
            live.fanout = PurgeFanout(
                store,
                session,
                app[CLOCK],
                app[METRICS],
                node_timeout=config.purge.node_timeout,
                retry_interval=config.purge.retry_interval,
                leading=lambda: live.cluster is None or live.cluster.is_leader,
            )
            retry = asyncio.get_running_loop().create_task(live.fanout.retry_loop())
            yield
        finally:
            if retry is not None:
                retry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retry
            if live.fanout is not None:
                await live.fanout.close()
                live.fanout = None
            if beat is not None:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            if live.cluster is not None:
                await live.cluster.resign()
                live.cluster = None
            if session is not None:
                live.session = None
                await session.close()
            if owns_store:
                await store.close()

    return lifecycle


async def _seed_nodes(app: web.Application) -> None:
    """Register the nodes listed under ``nodes:`` in the config (insert or replace)."""
    now = app[CLOCK].time()
    for name, node in app[CONFIG].nodes.items():
        await app[STORE].upsert_node(
            name,
            tier=node.tier,
            host=node.host,
            port=node.port,
            admin_url=node.admin_url.rstrip("/"),
            now=now,
        )
    if app[CONFIG].nodes:
        log.info("registered %d nodes from the config", len(app[CONFIG].nodes))
