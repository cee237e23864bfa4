"""A node's link to the control plane: heartbeats, purge catch-up by sequence number,
rate-limit policies, signing keys, services (issue 20) and the failover override.

Every ``control.interval`` seconds the node sends ``POST {url}/v1/nodes/{name}/heartbeat``
(with the node token) carrying its address and the last purge seq it applied; this also
registers it. The answer names the newest purge seq, the rate-limit policy version and
the failover state. When the newest seq is past the node's, it fetches
``GET {url}/v1/purges?after_seq=N`` and applies, in seq order, each purge it has not
applied yet; when the policy version moved, an edge fetches ``GET {url}/v1/ratelimits``;
when the services generation moved, the node fetches ``GET {url}/v1/services/active`` and
switches every service to its active version at once, and its next heartbeat reports the
versions it runs (activation progress).

**The purge guarantee.** A purge is reported complete only when every node registered at
its creation acknowledged it (mid tiers before edges), so no registered node serves a
purged object after completion. A node that was down, partitioned or even removed from
the registry meanwhile catches up here before it serves cached content again:

- a node whose store is empty at start (memory stores after a restart) has nothing to
  serve stale; its watermark starts at the newest seq of its first heartbeat;
- a node whose store holds content at start (disk stores) and knows its last applied seq
  (``control.state_file``) catches up *before it opens its data port*, waiting at most
  ``control.startup_sync_timeout`` seconds; if it cannot, or does not know its seq, it
  soft-purges everything, so every stored object is revalidated before it is served;
- a running node that missed pushes catches up within one heartbeat interval of
  reaching the control plane again.

The watermark is the highest seq ``W`` such that every purge up to ``W`` was applied;
pushed purges above it are remembered until the gap below them is filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from cdn_core.clock import Clock
from cdn_core.endpoints import Endpoints
from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy
from cdn_core.node.settings.control import ControlSettings
from cdn_core.replicas import NoReplicaAnswered, request_first
from cdn_core.store import PurgeSelector

log = logging.getLogger("cdn.node.sync")

_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError)


class ControlError(Exception):
    """The control plane could not be reached or gave an unusable answer."""


class NodeSync:
    """Owned by :class:`cdn_core.node.app.Node`; ``start()`` and ``stop()``."""

    def __init__(
        self,
        settings: ControlSettings,
        *,
        name: str,
        tier: str,
        clock: Clock,
        purge: Callable[[PurgeSelector], int],
        selector: Callable[[Any], PurgeSelector],
        set_policies: Callable[[list[RateLimitPolicy]], None] | None = None,
        set_failover: Callable[[bool, frozenset[str]], None] | None = None,
        set_signing_keys: Callable[[dict[str, str]], None] | None = None,
        set_services: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
        running_services: Callable[[], dict[str, int] | None] | None = None,
        on_synced: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.tier = tier
        self.clock = clock
        self._purge = purge
        self._selector = selector
        self._set_policies = set_policies
        self._set_failover = set_failover
        self._set_signing_keys = set_signing_keys
        self._set_services = set_services
        self._running_services = running_services
        self._on_synced = on_synced
        self.signing_version: int | None = None
        self.services_generation: int | None = None
        self.token: str | None = None
        self.address: tuple[str, int, str] | None = None  # host, port, admin URL
        self.watermark: int | None = self._load_watermark()
        self._applied: set[int] = set()  # seqs above the watermark already applied
        self.policy_version: int | None = None
        self.failover = False
        self.failover_services: frozenset[str] = frozenset()
        self.ok: bool | None = None
        self.last_error: str | None = None
        self.caught_up = 0  # purges applied by catch-up (not pushed)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # Several control-plane replicas: calls go to the one that answered last (set up
        # by open(), from the settings then).
        self.endpoints: Endpoints | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.url)

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self, token: str | None) -> None:
        self.token = token
        if not self.enabled:
            return
        self.endpoints = Endpoints(self.settings.urls)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=self.settings.timeout)
        )

    async def before_serving(self, has_content: bool) -> None:
        """Make stored content safe to serve (see the module docstring). Without stored
        content, one heartbeat (within ``startup_sync_timeout``) still brings the
        rate-limit policies, signing keys and failover state before the node serves (a
        node restarted by its supervisor rejoins with them); when the control plane does
        not answer, the node serves anyway and its heartbeat loop catches up later."""
        if not has_content:
            self.watermark = None  # nothing stored: start from the newest seq
            if self.enabled and self.settings.startup_sync_timeout:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.startup_sync_timeout):
                        await self.beat()
            return
        if not self.enabled:
            return  # no control plane: no purges to have missed
        if self.watermark is not None and self.settings.startup_sync_timeout:
            try:
                async with asyncio.timeout(self.settings.startup_sync_timeout):
                    await self.beat()
                if self.ok:
                    return
            except TimeoutError:
                self.last_error = "catch-up timed out"
        log.warning(
            "%s: cannot confirm which purges the stored content missed (%s):"
            " soft-purging everything so that it is revalidated",
            self.name,
            self.last_error or "no control plane or unknown last purge seq",
        )
        self._purge(PurgeSelector("all", "", True))
        self.watermark = None

    def set_address(self, host: str, port: int, admin_url: str) -> None:
        """Where the node serves (registered with every heartbeat)."""
        self.address = (self.settings.advertise_host or host, port, admin_url)

    def begin(self) -> None:
        """Start the heartbeat loop (when a control plane is configured)."""
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.settings.interval)

    # -- pushed purges --------------------------------------------------------------------

    def note_applied(self, seq: Any) -> None:
        """Record that the purge ``seq`` was pushed to this node and applied."""
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return
        if self.watermark is None or seq <= self.watermark:
            return
        self._applied.add(seq)
        advanced = False
        while self.watermark + 1 in self._applied:
            self._applied.discard(self.watermark + 1)
            self.watermark += 1
            advanced = True
        if advanced:
            self._save_watermark()

    # -- one heartbeat --------------------------------------------------------------------

    async def beat(self) -> bool:
        """One heartbeat and whatever it calls for; True when all of it succeeded."""
        async with self._lock:
            try:
                answer = await self._heartbeat()
                head = int(answer["purge_seq"])
                if self.watermark is None:
                    self.watermark = head
                    self._applied.clear()
                    self._save_watermark()
                elif head > self.watermark:
                    await self._catch_up()
                failover = answer.get("failover") or {}
                if not isinstance(failover, dict):
                    failover = {}
                forced = bool(failover.get("forced"))
                per_service = failover.get("services")
                services = frozenset(per_service) if isinstance(per_service, dict) else \
                    frozenset()
                if ((forced, services) != (self.failover, self.failover_services)
                        and self._set_failover is not None):
                    log.warning(
                        "%s: failover %s by the control plane%s",
                        self.name,
                        "forced" if forced else "released",
                        f" (and forced for services {', '.join(sorted(services))})"
                        if services else "",
                    )
                    self._set_failover(forced, services)
                self.failover, self.failover_services = forced, services
                version = answer.get("ratelimit_version")
                if self._set_policies is not None and version != self.policy_version:
                    await self._fetch_policies()
                    self.policy_version = version
                signing = answer.get("signing_version")
                if self._set_signing_keys is not None and signing != self.signing_version:
                    data = await self._call("GET", "/v1/signing-keys")
                    self._set_signing_keys(
                        {str(k["id"]): str(k["secret"]) for k in data.get("keys", [])}
                    )
                    self.signing_version = signing
                generation = answer.get("services_generation")
                if self._set_services is not None and generation != self.services_generation:
                    data = await self._call("GET", "/v1/services/active")
                    await self._set_services(list(data.get("services", [])))
                    self.services_generation = generation
            except (ControlError, *_ERRORS) as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
                if self.ok is not False:
                    log.warning("%s: control plane unavailable: %s", self.name, error)
                self.ok, self.last_error = False, error
                return False
            if self.ok is not True:
                log.info(
                    "%s: in sync with the control plane (purge seq %s)", self.name, self.watermark
                )
            self.ok, self.last_error = True, None
            if self._on_synced is not None:
                self._on_synced()
            return True

    async def mid_tiers(self) -> dict[str, str]:
        """``{name: "http://host:port"}`` of the registered mid tiers (a service's
        shields name them)."""
        data = await self._call("GET", "/v1/nodes?tier=mid")
        return {str(n["name"]): f"http://{n['host']}:{n['port']}" for n in data["nodes"]}

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            raise ControlError("not started")
        if self.endpoints is None:
            raise ControlError("not started")
        try:
            status, data = await request_first(self._session, self.endpoints, method, path,
                                               json=body)
        except NoReplicaAnswered as exc:
            raise ControlError(f"{method} {path}: {exc}") from None
        if status != 200:
            error = data.get("error") if isinstance(data, dict) else None
            raise ControlError(f"{method} {path}: HTTP {status}: {error}")
        if not isinstance(data, dict):
            raise ControlError(f"{method} {path}: answer is not a JSON object")
        return data

    async def _heartbeat(self) -> dict[str, Any]:
        if self.address is None:
            raise ControlError("node address not known yet")
        host, port, admin_url = self.address
        body = {
            "tier": self.tier,
            "host": host,
            "port": port,
            "admin_url": admin_url,
            "purge_seq": self.watermark,
        }
        if self._running_services is not None:
            body["services"] = self._running_services()
        result: dict[str, Any] = await self._call("POST", f"/v1/nodes/{self.name}/heartbeat", body)
        return result

    async def _catch_up(self) -> None:
        assert self.watermark is not None
        while True:
            data = await self._call("GET", f"/v1/purges?after_seq={self.watermark}&limit=500")
            for purge in data["purges"]:
                seq = int(purge["seq"])
                if seq <= self.watermark:
                    continue
                if seq not in self._applied:
                    try:
                        selector = self._selector(purge)
                    except ValueError as exc:  # not ours to fix: skip it, loudly
                        log.error("%s: cannot apply purge seq %d: %s", self.name, seq, exc)
                    else:
                        self._purge(selector)
                        self.caught_up += 1
                        log.info("%s: caught up purge seq %d (%s)", self.name, seq, purge["type"])
                self.watermark = seq
            self._applied = {s for s in self._applied if s > self.watermark}
            self._save_watermark()
            if not data.get("more") or not data["purges"]:
                return

    async def _fetch_policies(self) -> None:
        data = await self._call("GET", "/v1/ratelimits")
        fields = set(RateLimitPolicy.model_fields)
        policies = []
        for raw in data["policies"]:
            try:
                policies.append(
                    RateLimitPolicy.model_validate({k: v for k, v in raw.items() if k in fields})
                )
            except ValueError as exc:
                log.warning(
                    "%s: ignoring rate-limit policy %r: %s", self.name, raw.get("name"), exc
                )
        assert self._set_policies is not None
        self._set_policies(policies)

    # -- persistence ----------------------------------------------------------------------

    def _load_watermark(self) -> int | None:
        path = self.settings.state_file
        if not path:
            return None
        try:
            return int(Path(path).read_text().strip())
        except (OSError, ValueError):
            return None

    def _save_watermark(self) -> None:
        path = self.settings.state_file
        if not path or self.watermark is None:
            return
        tmp = f"{path}.tmp"
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w") as f:
                f.write(f"{self.watermark}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("%s: cannot save purge seq to %s: %s", self.name, path, exc)

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.endpoints.current if self.endpoints else None,
            "urls": self.settings.urls,
            "ok": self.ok,
            "purge_seq": self.watermark,
            "caught_up": self.caught_up,
            "ratelimit_version": self.policy_version,
            "services_generation": self.services_generation,
            "failover": self.failover,
            "last_error": self.last_error,
        }
