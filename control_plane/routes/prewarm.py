"""Push: ``POST /v1/prewarm`` and ``POST /v1/announce`` (purger or admin role).

- ``POST /v1/prewarm`` body ``{"urls": [absolute URL, ...]}`` or ``{"sitemap": URL}``,
  optional ``"tiers": ["mid", "edge"]`` (default both) -> 200 ``{"urls": n, "tiers",
  "ok": bool, "nodes": {name: {"tier", "ok", "error", "stored", "results": {url:
  cache-status}}}}`` (with a sitemap also ``"skipped"``: URLs it named on hosts not
  served) once every node of the chosen tiers answered (mid tier first). Every URL must
  be on ``push.hosts`` (:func:`control_plane.push.served`); 400 otherwise.
- ``POST /v1/announce`` body ``{"urls": [...], "tiers"}``: the origin says these objects
  are new or changed. Each URL is purged (hard, waiting for the fan-out) and then
  prewarmed -> 200 ``{"purges": [{"id", "seq", "state"}], "prewarm": {...as above}}``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from control_plane.api import (
    CLOCK,
    CONFIG,
    STORE,
    ApiError,
    body_of,
    fanout_of,
    read_body,
    session_of,
)
from control_plane.auth import PURGE, add_route
from control_plane.config import PushConfig
from control_plane.models import AnnounceIn, PrewarmIn
from control_plane.push import NOT_SERVED, PushError, prewarm, served, sitemap_urls


def _check_urls(urls: list[str], push: PushConfig) -> list[str]:
    for i, url in enumerate(urls):
        if not served(url, push):
            raise ApiError(400, f"urls.{i}: {NOT_SERVED}")  # the URL is not echoed
    return list(dict.fromkeys(urls))


async def _push(request: web.Request, urls: list[str], tiers: list[str]) -> dict[str, object]:
    app = request.app
    nodes = await app[STORE].list_nodes()
    return await prewarm(session_of(app), nodes, urls, tiers, timeout=app[CONFIG].push.node_timeout)


async def create_prewarm(request: web.Request) -> web.Response:
    body = await read_body(request, PrewarmIn)
    push = request.app[CONFIG].push
    if (body.urls is None) == (body.sitemap is None):
        raise ApiError(400, "urls: give either 'urls' or 'sitemap' (exactly one)")
    skipped = 0
    if body.sitemap is not None:
        if not served(body.sitemap, push):
            raise ApiError(400, f"sitemap: {NOT_SERVED}")
        nodes = await request.app[STORE].list_nodes()
        try:
            urls, skipped = await sitemap_urls(body.sitemap, nodes, push)
        except PushError as exc:
            raise ApiError(422, f"sitemap: {exc}") from None
    else:
        assert body.urls is not None
        if len(body.urls) > push.max_urls:
            raise ApiError(400, f"urls: at most {push.max_urls} URLs per prewarm")
        urls = _check_urls(body.urls, push)
    report = await _push(request, urls, list(body.tiers))
    if body.sitemap is not None:
        report["skipped"] = skipped  # named by the sitemap, not on a served host
    return body_of(report)


async def announce(request: web.Request) -> web.Response:
    body = await read_body(request, AnnounceIn)
    urls = _check_urls(body.urls, request.app[CONFIG].push)
    store, fanout = request.app[STORE], fanout_of(request.app)
    now = request.app[CLOCK].time()
    created = [await store.create_purge("url", url, False, now) for url in urls]
    done = await asyncio.gather(*(fanout.run(p) for p in created))
    report = await _push(request, urls, list(body.tiers))
    purges = [{"id": p.id, "seq": p.seq, "state": p.state} for p in done]
    return body_of({"purges": purges, "prewarm": report})


def add_routes(app: web.Application) -> None:
    add_route(app, "POST", "/v1/prewarm", create_prewarm, PURGE)
    add_route(app, "POST", "/v1/announce", announce, PURGE)
