"""Push (prewarm): make chosen tiers fetch and store URLs before clients ask.

The mid tier goes first, so that the edges then fill from a warm shield instead of all
going to the origin. Each node gets one ``POST {admin_url}/prewarm`` with
``{"urls": [...]}`` (the node token rides on the session) and answers
``{"node", "results": {url: cache-status text or "error: ..."}}``.

Only URLs on the hosts the CDN serves (``push.hosts``, on ``push.ports``) are accepted
(:func:`served`); nothing else is ever contacted, so a prewarm cannot be aimed at
loopback, link-local, private addresses or admin ports, and the error for a refused URL
is the same whatever is behind it. Sitemaps (sitemaps.org ``urlset``, or a
``sitemapindex`` one level deep) are fetched through the tier path, from an edge (or a
mid tier) with the sitemap's ``Host``, with a session that carries no credentials.
"""

from __future__ import annotations

import asyncio
import fnmatch
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from control_plane.config import PushConfig
from control_plane.models import Node, is_http_url

SITEMAP_MAX_BYTES = 10 * 1024 * 1024
_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class PushError(Exception):
    """A sitemap could not be used (the message says why)."""


def parse_sitemap(data: bytes) -> tuple[str, list[str]]:
    """``("urlset"|"sitemapindex", [loc, ...])`` from sitemap XML.

    Raises:
        PushError: not XML, or neither a urlset nor a sitemap index.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise PushError(f"sitemap is not XML: {exc}") from exc
    kind = root.tag.removeprefix(_NS)
    if kind not in ("urlset", "sitemapindex"):
        raise PushError(f"sitemap root must be urlset or sitemapindex, not {kind!r}")
    locs = [
        (el.text or "").strip()
        for el in root.iter()
        if el.tag.removeprefix(_NS) == "loc" and (el.text or "").strip()
    ]
    return kind, locs


NOT_SERVED = "not an http(s) URL on a host and port this CDN serves (push.hosts, push.ports)"


def served(url: str, push: PushConfig) -> bool:
    """Whether ``url`` is an absolute http(s) URL, without user info, whose host is one
    of ``push.hosts`` (a ``*.`` entry matches any name under it) and whose port, when
    given, is one of ``push.ports``."""
    if not is_http_url(url):
        return False
    parts = urlsplit(url)
    if "@" in parts.netloc or parts.port is not None and parts.port not in push.ports:
        return False
    host = (parts.hostname or "").rstrip(".")
    return any(
        host == h or (h.startswith("*.") and fnmatch.fnmatchcase(host, h)) for h in push.hosts
    )


def _through(nodes: list[Node]) -> list[Node]:
    """The nodes a sitemap is fetched through: edges, then mid tiers."""
    return [n for n in nodes if n.tier == "edge"] + [n for n in nodes if n.tier == "mid"]


async def sitemap_urls(
    url: str, nodes: list[Node], push: PushConfig
) -> tuple[list[str], int]:
    """The page URLs a sitemap names (following one level of sitemap index) that are on
    served hosts, and how many it named that are not (left out).

    Raises:
        PushError: the sitemap is not on a served host, no edge or mid tier could fetch
            it, it is not a sitemap, or it names more than ``push.max_urls`` URLs.
    """
    via = _through(nodes)
    if not via:
        raise PushError("no edge or mid tier is registered to fetch it through")
    client_timeout = aiohttp.ClientTimeout(total=push.sitemap_timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:

        async def fetch(u: str) -> bytes:
            if not served(u, push):
                raise PushError(NOT_SERVED)
            parts = urlsplit(u)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            for node in via:
                try:
                    async with session.get(
                        f"http://{node.host}:{node.port}{target}",
                        headers={"Host": parts.hostname or ""},
                        allow_redirects=False,
                    ) as resp:
                        if resp.status != 200:
                            raise PushError(f"HTTP {resp.status} through {node.name}")
                        data = await resp.content.read(SITEMAP_MAX_BYTES + 1)
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                    continue  # that node is unreachable: the next one
                if len(data) > SITEMAP_MAX_BYTES:
                    raise PushError(f"larger than {SITEMAP_MAX_BYTES} bytes")
                return data
            raise PushError("no edge or mid tier answered")

        kind, locs = parse_sitemap(await fetch(url))
        if kind == "sitemapindex":
            pages: list[str] = []
            for child in locs[:50]:
                child_kind, child_locs = parse_sitemap(await fetch(child))
                if child_kind == "urlset":
                    pages.extend(child_locs)
            locs = pages
    kept = [u for u in dict.fromkeys(locs) if served(u, push)]
    if len(kept) > push.max_urls:
        raise PushError(f"sitemap names {len(kept)} URLs; at most {push.max_urls} per prewarm")
    return kept, len(dict.fromkeys(locs)) - len(kept)


async def _prewarm_node(
    session: aiohttp.ClientSession, node: Node, urls: list[str], timeout: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"tier": node.tier, "ok": False, "error": None, "stored": 0}
    try:
        async with session.post(
            node.admin_url.rstrip("/") + "/prewarm",
            json={"urls": urls},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(data, dict):
                error = data.get("error") if isinstance(data, dict) else None
                out["error"] = f"HTTP {resp.status}: {error or 'unexpected answer'}"[:200]
                return out
    except TimeoutError:
        out["error"] = f"no answer within {timeout} s"
        return out
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
        return out
    results = data.get("results") if isinstance(data.get("results"), dict) else {}
    out["ok"] = True
    out["stored"] = sum(1 for v in results.values() if isinstance(v, str) and "stored" in v)
    out["results"] = results
    return out


async def prewarm(
    session: aiohttp.ClientSession,
    nodes: list[Node],
    urls: list[str],
    tiers: list[str],
    *,
    timeout: float,
) -> dict[str, Any]:
    """Prewarm ``urls`` on the ``nodes`` of ``tiers`` (mid tier first, then edges);
    returns ``{"urls": n, "tiers": [...], "nodes": {name: {"tier", "ok", "error",
    "stored", "results"}}, "ok": every node answered}``."""
    report: dict[str, Any] = {}
    for tier in ("mid", "edge"):
        if tier not in tiers:
            continue
        group = [n for n in nodes if n.tier == tier]
        answers = await asyncio.gather(*(_prewarm_node(session, n, urls, timeout) for n in group))
        report.update({n.name: a for n, a in zip(group, answers, strict=True)})
    ordered = [t for t in ("mid", "edge") if t in tiers]
    ok = all(a["ok"] for a in report.values())
    return {"urls": len(urls), "tiers": ordered, "ok": ok, "nodes": report}
