"""The services a node serves (issue 20): the active versions from the control plane,
compiled and swapped into the proxy at once (:attr:`CachingProxy.services
<cdn_core.node.proxy.handler.CachingProxy>`), what the node reports running, and URL
purges turned into the keys a service makes.

Until the control plane has an active service, ``services`` stays None and the node
serves every host as one implicit site from its configured upstreams (``python -m edge
--upstream URL`` alone). From the first active service on, a request whose host no
service has gets 421 Misdirected Request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from cdn_core.clock import Clock
from cdn_core.node.exchange.keys import normalize_host, normalize_target, prefix_form
from cdn_core.node.exchange.request import Request
from cdn_core.node.filling.upstream import UpstreamPool
from cdn_core.node.policy.signed import SignedUrlGate
from cdn_core.node.proxy.handler import CachingProxy
from cdn_core.node.settings.node import NodeConfig
from cdn_core.node.settings.upstream import UpstreamSettings
from cdn_core.services.compiled import CompiledService, ServiceSet
from cdn_core.services.keys import key_url
from cdn_core.services.validate import validate
from cdn_core.store import PurgeSelector

log = logging.getLogger("cdn.node.services")

CONFIRMED_BEATS = 3  # heartbeat intervals the services stay confirmed after a good one


class ServiceRouting:
    """Owned by the node; :meth:`apply` is the sync's ``set_services`` callback. A mid
    tier fetches each service from the service's own origins (one
    :class:`~cdn_core.node.filling.upstream.UpstreamPool` per service, so health is per
    origin per service); an edge from its configured upstreams (the mid tiers), or only
    from the registered mid tiers a service names as its shields."""

    def __init__(self, proxy: CachingProxy, config: NodeConfig, clock: Clock) -> None:
        self.proxy = proxy
        self.config = config
        self.name = config.name
        self.clock = clock
        self.rejected: dict[str, str] = {}  # service -> why its document was not used
        self.pools: dict[str, UpstreamPool] = {}
        self._retired: set[asyncio.Task[None]] = set()
        proxy.filler.upstream_for = self.upstream_for
        # The registered mid tiers by name (an edge's view, for services with shields).
        self.mid_tiers: Callable[[], Awaitable[dict[str, str]]] | None = None
        self.signed: SignedUrlGate | None = None  # the edge's gate (set by the node)
        self._beat: Callable[[], Awaitable[bool]] | None = None
        self._resyncing: asyncio.Lock = asyncio.Lock()
        self._beating: asyncio.Task[bool] | None = None  # a resync's heartbeat
        # The last resync's heartbeat failed: hold no request until one succeeds.
        self._out_of_touch = False

    def confirm_with(self, beat: Callable[[], Awaitable[bool]]) -> None:
        """Catch up through ``beat`` (one heartbeat) when the node was out of touch."""
        self._beat = beat
        self.proxy.resync = self.resync

    def synced(self) -> None:
        """A heartbeat succeeded: the services are current for :data:`CONFIRMED_BEATS`
        heartbeat intervals."""
        self.proxy.services_confirmed_until = (
            self.clock.time() + CONFIRMED_BEATS * self.config.control.interval)
        self._out_of_touch = False

    async def resync(self) -> None:
        """Called by the proxy for a request that came after the confirmation ran out
        (the node was stopped or partitioned): one heartbeat first, so the request sees
        the versions the control plane has now. The request waits at most one heartbeat
        interval; when the heartbeat fails or takes longer (the control plane or its
        database is out of reach), the node serves with what it has and holds no request
        again until a heartbeat succeeds."""
        if self._out_of_touch:
            self._serve_as_is()
            return
        async with self._resyncing:
            if self.clock.time() <= self.proxy.services_confirmed_until:
                return  # another request's heartbeat already did it
            if self._out_of_touch:
                self._serve_as_is()
                return
            ok = False
            if self._beat is not None:
                if self._beating is None or self._beating.done():
                    self._beating = asyncio.ensure_future(self._beat())
                try:
                    # shield: a slow heartbeat goes on; synced() records its success
                    ok = await asyncio.wait_for(asyncio.shield(self._beating),
                                                timeout=self.config.control.interval)
                except TimeoutError:
                    ok = False
            if not ok:
                log.warning("%s: cannot confirm the services' versions; serving the last "
                            "ones until the control plane answers", self.name)
                self._out_of_touch = True
                self._serve_as_is()

    def _serve_as_is(self) -> None:
        # The proxy asks again only an interval later (it would call resync at once).
        self.proxy.services_confirmed_until = max(
            self.proxy.services_confirmed_until,
            self.clock.time() + self.config.control.interval)

    def _place_signed_gate(self, services: dict[str, CompiledService]) -> None:
        """The signed-URL gate checks the prefixes of the services that have some, and
        is among the proxy's gates only while any prefix (configured or a service's)
        needs a signature: other nodes pay nothing for it."""
        gate = self.signed
        if gate is None:
            return
        wanted = any(s.spec.features.signed_url_prefixes for s in services.values())
        gate.service_prefixes = self.signed_prefixes if wanted else None
        needed = wanted or bool(gate.prefixes)
        gates = self.proxy.gates
        if needed and gate not in gates:
            gates.insert(0, gate)
        elif not needed and gate in gates:
            gates.remove(gate)

    def signed_prefixes(self, host: str) -> tuple[str, ...]:
        """The signed-URL prefixes of the service of ``host`` (none for other hosts)."""
        svc = self.proxy.service_for(host)
        if svc is None:
            return ()
        return tuple(prefix_form(p) for p in svc.spec.features.signed_url_prefixes)

    def service_of(self, host: str) -> str | None:
        """The name of the service a normalised host belongs to (rate-limit policies
        that name a service), or None."""
        svc = self.proxy.service_for(host)
        return svc.name if svc is not None else None

    def upstream_for(self, req: Request) -> UpstreamPool:
        """The pool a request's fill goes to: its service's origins, else the node's."""
        svc = req.service
        pool = self.pools.get(svc.name) if svc is not None else None
        return pool if pool is not None else self.proxy.upstream

    async def apply(self, active: list[dict[str, Any]]) -> None:
        """Switch to ``active`` (``[{"name", "version", "document"}]``, from ``GET
        /v1/services/active``): every service at its new version in one assignment. A
        document this node cannot use (a newer schema) keeps that service at the version
        it ran, and is logged."""
        current = self.proxy.services.services if self.proxy.services is not None else {}
        compiled: dict[str, CompiledService] = {}
        self.rejected = {}
        for item in active:
            name, version = str(item.get("name")), int(item.get("version", 0))
            old = current.get(name)
            if old is not None and old.version == version:
                compiled[name] = old  # keep its memos
                continue
            spec, problems = validate(item.get("document"))
            if spec is None:
                why = "; ".join(p.line() for p in problems[:3])
                self.rejected[name] = why
                log.error("%s: cannot run service %s version %s: %s", self.name, name,
                          version, why)
                if old is not None:
                    compiled[name] = old
                continue
            compiled[name] = CompiledService.compile(spec, version)
        before = self.running()
        await self._pools_for(compiled)
        self.proxy.services = ServiceSet(compiled) if compiled else None
        self._place_signed_gate(compiled)
        after = self.running()
        if before != after:
            log.info("%s: services now %s", self.name, after or "none (one implicit site)")

    async def _pools_for(self, services: dict[str, CompiledService]) -> None:
        """One started pool per service, kept while its origins stay the same; pools no
        longer used close once their requests had time to finish."""
        old, self.pools = self.pools, {}
        mids: dict[str, str] = {}
        if self.config.tier == "edge" and self.mid_tiers is not None and any(
                s.spec.origins.shields for s in services.values()):
            mids = await self.mid_tiers()
        for name, svc in services.items():
            if self.config.tier == "mid":
                settings = origin_settings(self.config.upstream, svc)
            else:
                shields = [mids[n] for n in svc.spec.origins.shields or () if n in mids]
                if not shields:
                    continue  # no shields (or none registered): the edge's mid tiers
                settings = self.config.upstream.model_copy(update={"urls": shields})
            pool = old.get(name)
            if pool is not None and pool.settings == settings:
                self.pools[name] = old.pop(name)
                continue
            pool = UpstreamPool(settings, self.clock)
            await pool.start()
            self.pools[name] = pool
        for pool in old.values():
            task = asyncio.get_running_loop().create_task(
                self._close_later(pool, pool.settings.timeout))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    @staticmethod
    async def _close_later(pool: UpstreamPool, grace: float) -> None:
        await asyncio.sleep(grace)
        await pool.close()

    async def close(self) -> None:
        """Close every pool (the node is stopping)."""
        for task in [*self._retired, *([self._beating] if self._beating else [])]:
            task.cancel()
        for pool in [*self.pools.values()]:
            await pool.close()
        self.pools = {}

    def running(self) -> dict[str, int] | None:
        """``{service: version}`` for the heartbeat; None before any service is active."""
        services = self.proxy.services
        return services.versions() if services is not None else None

    def purge_selector(self, selector: PurgeSelector) -> PurgeSelector:
        """A URL purge as the service of its host keys it: the query reduced as the
        service's cache-key rule says (a purge of ``/p?utm_source=x`` reaches ``/p`` when
        ``utm_*`` is not in the key). Other purges, and URLs of no service, unchanged."""
        services = self.proxy.services
        if services is None or selector.type != "url":
            return selector
        parts = urlsplit(selector.value)
        host = normalize_host(parts.netloc.rsplit("@", 1)[-1])
        svc = services.select(host)
        if svc is None:
            return selector
        path, _, query = normalize_target(
            (parts.path or "/") + (f"?{parts.query}" if parts.query else "")).partition("?")
        return replace(selector, value=key_url(parts.scheme, host, path, query, svc.key))

    def describe(self) -> dict[str, Any]:
        """For ``/status``: what runs, and what could not."""
        return {"running": self.running(), "rejected": self.rejected,
                "upstreams": {name: pool.status() for name, pool in self.pools.items()}}


def origin_settings(node: UpstreamSettings, svc: CompiledService) -> UpstreamSettings:
    """The upstream settings of ``svc``'s origins: its URLs, selection, timeouts and
    health path; pool size, failure thresholds and CA bundle from the node's own."""
    o = svc.spec.origins
    return node.model_copy(update={
        "urls": [s.url for s in o.servers], "selection": o.selection,
        "connect_timeout": o.connect_timeout, "timeout": o.read_timeout,
        "health_path": o.health_path, "verify_tls": o.verify_tls,
    })
