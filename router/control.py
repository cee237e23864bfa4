"""Edges from the control plane's node registry, and the domains of its active services.

``GET {url}/v1/nodes`` answers ``{"nodes": [{"name", "tier", "host", "port",
"admin_url"}, ...]}``. Its ``tier: "edge"`` nodes are merged with the configured edges
(a configured edge wins over a registered one of the same name). When the control plane
cannot be reached, the last list it gave stays in force: the router never fails or drops
edges because its registry is away.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from yarl import URL

from cdn_core.clock import Clock
from cdn_core.endpoints import Endpoints, split_urls
from cdn_core.replicas import request_first
from router.config import ControlPlaneSettings
from router.health import PROBE_ERRORS
from router.table import EdgeSpec

log = logging.getLogger("cdn.router.control")


def parse_nodes(body: Any) -> list[EdgeSpec]:
    """Edge specs from a ``/v1/nodes`` body; entries that are not usable edges (other
    tiers, a host that is not an IP address, missing fields) are skipped.

    Raises:
        ValueError: the body is not ``{"nodes": [...]}``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("nodes"), list):
        raise ValueError('expected {"nodes": [...]}')
    out: list[EdgeSpec] = []
    for node in body["nodes"]:
        if not isinstance(node, dict) or node.get("tier") != "edge":
            continue
        name, host, port = node.get("name"), node.get("host"), node.get("port")
        admin_url = node.get("admin_url")
        if not isinstance(name, str) or not name or not isinstance(host, str):
            continue
        try:
            address = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            continue  # DNS answers need an address; a registered hostname is of no use
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            continue
        if not isinstance(admin_url, str) or not admin_url.startswith(("http://", "https://")):
            continue
        out.append(EdgeSpec(name, address, port, admin_url.rstrip("/"), "control-plane"))
    return out


def parse_domains(body: Any) -> list[str]:
    """The domains of every active service in a ``/v1/services/active`` body, sorted.

    Raises:
        ValueError: the body is not ``{"services": [...]}``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("services"), list):
        raise ValueError('expected {"services": [...]}')
    out: set[str] = set()
    for svc in body["services"]:
        doc = svc.get("document") if isinstance(svc, dict) else None
        domains = doc.get("domains") if isinstance(doc, dict) else None
        if isinstance(domains, list):
            out.update(d.lower().rstrip(".") for d in domains if isinstance(d, str) and d)
    return sorted(out)


def merge_edges(static: Sequence[EdgeSpec], registered: Sequence[EdgeSpec]) -> list[EdgeSpec]:
    """Configured edges first, then registered ones whose names are not configured."""
    names = {s.name for s in static}
    return [*static, *(r for r in registered if r.name not in names)]


class ControlPlaneSync:
    """Polls the registry every ``poll_interval`` seconds and calls ``apply(edges)`` with
    the registered edges after each successful poll."""

    def __init__(
        self,
        settings: ControlPlaneSettings,
        session: aiohttp.ClientSession,
        clock: Clock,
        apply: Callable[[list[EdgeSpec]], None],
        apply_domains: Callable[[list[str]], None] | None = None,
    ) -> None:
        if not settings.url:
            raise ValueError("control_plane.url is not set")
        # Several replicas (URL1,URL2): each poll asks the one that answered last first.
        self._endpoints = Endpoints(split_urls(settings.url))
        self._apply_domains = apply_domains
        self.domains: list[str] | None = None
        self._cfg = settings
        self._session = session
        self._clock = clock
        self._apply = apply
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self.ok: bool | None = None
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.edges = 0

    async def poll(self) -> bool:
        """One poll; True when the registry answered with a usable list."""
        try:
            edges = parse_nodes(await self._get("/v1/nodes"))
        except PROBE_ERRORS as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            if self.ok is not False:
                log.warning(
                    "control plane %s unavailable, keeping the last edge list: %s",
                    self._shown,
                    error,
                )
            self.ok, self.last_error = False, error
            return False
        if self.ok is not True:
            log.info("control plane %s: %d edges registered", self._shown, len(edges))
        self.ok, self.last_error = True, None
        self.last_success = self._clock.monotonic()
        self.edges = len(edges)
        self._apply(edges)
        if self._apply_domains is not None:
            await self._poll_domains()
        return True

    async def _poll_domains(self) -> None:
        """The domains of the active services (issue 20); on failure the last ones stay."""
        try:
            domains = parse_domains(await self._get("/v1/services/active"))
        except PROBE_ERRORS as exc:
            log.warning("control plane %s: cannot read services, keeping the last domains:"
                        " %s", self._shown, f"{type(exc).__name__}: {exc}"[:200])
            return
        if domains != self.domains:
            log.info("control plane %s: answering %d service domains", self._shown,
                     len(domains))
            self.domains = domains
            assert self._apply_domains is not None
            self._apply_domains(domains)

    @property
    def _shown(self) -> str:
        # The URL may carry credentials (user:key@host): never log or show them.
        return str(URL(self._endpoints.current).with_user(None))

    async def _get(self, path: str) -> Any:
        """The JSON of ``GET path`` from the first replica that answers 200.

        Raises:
            ValueError: the replica that answered said something else than 200.
            cdn_core.replicas.NoReplicaAnswered: none answered.
        """
        status, data = await request_first(self._session, self._endpoints, "GET", path,
                                           timeout=self._timeout)
        if status != 200:
            raise ValueError(f"HTTP {status}")
        return data

    async def run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._cfg.poll_interval)

    def describe(self) -> dict[str, Any]:
        now = self._clock.monotonic()
        return {
            "url": self._shown,
            "ok": self.ok,
            "edges": self.edges,
            "service_domains": self.domains,
            "last_success_age_s": None
            if self.last_success is None
            else round(now - self.last_success, 3),
            "last_error": self.last_error,
        }
