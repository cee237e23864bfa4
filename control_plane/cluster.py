"""This replica's place among the control-plane replicas sharing one database.

Every ``cluster.interval`` seconds :meth:`Cluster.tick` records the replica as alive
(``replicas`` table), tries to create, renew or take over the leader lease (see
:mod:`control_plane.lease`), and reloads the API keys (a key created or revoked through
another replica counts here from the next tick). Work that must happen once —
retrying unacknowledged purges, the origin watch that forces failover, stats sampling —
asks :attr:`Cluster.is_leader` first.

A replica counts itself leader only until ``lease_ttl`` seconds after the start of its
last successful renewal, by its own monotonic clock: one that loses the database stops
leading before any other replica can take the lease over. On a clean shutdown the leader
releases the lease, so another takes over at its next tick. With SQLite (one replica)
the only replica is the leader from its first tick, which runs before the app serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from cdn_core.clock import Clock
from control_plane.auth import Authenticator
from control_plane.config import ClusterConfig
from control_plane.db import DatabaseUnavailable
from control_plane.lease import Lease
from control_plane.store import Store

log = logging.getLogger("cdn.control_plane.cluster")

LEADER = "leader"


class Cluster:
    """One replica: its id (``<name>-<8 hex>``, new on every start), the lease it sees."""

    def __init__(self, store: Store, clock: Clock, authn: Authenticator, config: ClusterConfig,
                 *, name: str, url: str) -> None:
        self.id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.name = name
        self.url = url
        self._store = store
        self._clock = clock
        self._authn = authn
        self._cfg = config
        self._leading_until = 0.0  # time.monotonic()
        self.lease: Lease | None = None
        self.ok: bool | None = None
        self.last_error: str | None = None

    @property
    def is_leader(self) -> bool:
        """True while this replica holds a live lease (by its own monotonic clock)."""
        return time.monotonic() < self._leading_until

    async def tick(self) -> None:
        """Announce, take or renew the lease, reload keys.

        Raises:
            DatabaseUnavailable: the database cannot be reached (leadership then lapses
                at the end of the lease already held).
        """
        started = time.monotonic()
        now = self._clock.time()
        was_leader = self.is_leader
        change, lease = await self._store.cluster_round(
            self.id, name=self.name, url=self.url, lease=LEADER, now=now,
            ttl=self._cfg.lease_ttl, forget_before=now - self._cfg.forget_after)
        self.lease = lease
        if lease.holder == self.id:
            self._leading_until = started + self._cfg.lease_ttl
            if not was_leader:
                # Taking over from another replica is news; the first lease is not.
                log.log(logging.WARNING if change == "take" else logging.INFO,
                        "%s is the leader now (term %d, %s)", self.id, lease.term, change)
        else:
            self._leading_until = 0.0
            if was_leader:
                log.warning("%s is no longer the leader: %s holds the lease (term %d)",
                            self.id, lease.holder, lease.term)
        self._authn.load(await self._store.list_keys())

    async def run(self) -> None:
        """Forever: :meth:`tick` every ``interval`` seconds; failures are logged once per
        outage and the next tick runs as usual."""
        while True:
            await asyncio.sleep(self._cfg.interval)
            try:
                await self.tick()
            except DatabaseUnavailable as exc:
                if self.ok is not False:
                    log.warning("cluster: %s", exc)
                self.ok, self.last_error = False, str(exc)
                continue
            except Exception as exc:
                log.exception("cluster tick failed")
                self.ok, self.last_error = False, f"{type(exc).__name__}: {exc}"
                continue
            if self.ok is False:
                log.info("cluster: database reachable again")
            self.ok, self.last_error = True, None

    async def resign(self) -> None:
        """Release the lease when this replica holds it (a clean shutdown)."""
        if self.lease is not None and self.lease.holder == self.id:
            self._leading_until = 0.0
            try:
                await self._store.release_lease(LEADER, self.id, self._clock.time())
            except DatabaseUnavailable as exc:
                log.warning("cannot release the leader lease: %s", exc)

    async def leader_url(self) -> str | None:
        """The base URL of the replica holding a live lease, when it is another one."""
        lease = self.lease
        if lease is None or lease.holder == self.id or lease.expires_at <= self._clock.time():
            return None
        for r in await self._store.list_replicas():
            if r.id == lease.holder:
                return r.url
        return None

    async def describe(self) -> dict[str, Any]:
        """``GET /v1/cluster``: ``{"self", "leader", "lease", "replicas": [...]}``; a
        replica is ``alive`` when seen within ``lease_ttl`` seconds."""
        now = self._clock.time()
        try:
            lease = await self._store.get_lease(LEADER)
            found = await self._store.list_replicas()
        except DatabaseUnavailable as exc:
            # What this replica last saw, so an operator still learns something.
            lease, found, stale = self.lease, [], str(exc)
        else:
            stale = None
        live = lease if lease is not None and lease.expires_at > now else None
        replicas = []
        for r in found:
            replicas.append({
                "id": r.id, "name": r.name, "url": r.url, "started_at": r.started_at,
                "last_seen": r.last_seen, "age": round(now - r.last_seen, 3),
                "alive": now - r.last_seen <= self._cfg.lease_ttl,
                "leader": live is not None and live.holder == r.id,
            })
        return {
            "self": {"id": self.id, "name": self.name, "url": self.url,
                     "leader": self.is_leader, "ok": self.ok, "last_error": self.last_error},
            "leader": live.holder if live is not None else None,
            "lease": lease.to_json(now) if lease is not None else None,
            "lease_ttl": self._cfg.lease_ttl,
            "replicas": replicas,
            **({"stale": stale} if stale else {}),
        }
