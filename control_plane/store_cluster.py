"""Tables of the control-plane replicas (issue 22), mixed into
:class:`control_plane.store.Store`: ``replicas`` (each replica's id, name, URL and last
sign of life) and ``leases`` (the leader lease, see :mod:`control_plane.lease`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from control_plane.db import Database, Tx
from control_plane.lease import Change, Lease, attempt


@dataclass(frozen=True)
class Replica:
    id: str
    name: str
    url: str
    started_at: float
    last_seen: float


def _lease(row: Mapping[str, Any]) -> Lease:
    return Lease(row["name"], row["holder"], row["acquired_at"], row["expires_at"], row["term"])


async def _seen(db: Tx, replica_id: str, name: str, url: str, now: float) -> None:
    await db.run(
        "INSERT INTO replicas (id, name, url, started_at, last_seen)"
        " VALUES (:id, :name, :url, :now, :now) ON CONFLICT (id) DO UPDATE"
        " SET name = excluded.name, url = excluded.url, last_seen = excluded.last_seen",
        id=replica_id, name=name, url=url, now=now)


async def _acquire(db: Tx, name: str, holder: str, now: float,
                   ttl: float) -> tuple[Change, Lease]:
    row = await db.one("SELECT * FROM leases WHERE name = :name", name=name)
    change, lease = attempt(_lease(row) if row else None, name, holder, now, ttl)
    if change == "create":
        await db.run(
            "INSERT INTO leases (name, holder, acquired_at, expires_at, term)"
            " VALUES (:name, :holder, :at, :until, :term)",
            name=name, holder=holder, at=lease.acquired_at, until=lease.expires_at,
            term=lease.term)
    elif change != "keep":
        await db.run(
            "UPDATE leases SET holder = :holder, acquired_at = :at, expires_at = :until,"
            " term = :term WHERE name = :name",
            name=name, holder=holder, at=lease.acquired_at, until=lease.expires_at,
            term=lease.term)
    return change, lease


class ClusterTables(Database):
    async def list_replicas(self) -> list[Replica]:
        """Every replica recorded, most recently seen first."""
        async with self._read() as db:
            rows = await db.all("SELECT * FROM replicas ORDER BY last_seen DESC, id")
        return [Replica(r["id"], r["name"], r["url"], r["started_at"], r["last_seen"])
                for r in rows]

    async def acquire_lease(self, name: str, holder: str, *, now: float,
                            ttl: float) -> tuple[Change, Lease]:
        """Create, renew or take over lease ``name`` for ``holder`` when
        :func:`control_plane.lease.attempt` allows; returns the change and the lease as
        stored afterwards (another holder's when it is still live)."""
        async with self._tx() as db:
            return await _acquire(db, name, holder, now, ttl)

    async def cluster_round(self, replica_id: str, *, name: str, url: str, lease: str,
                            now: float, ttl: float, forget_before: float
                            ) -> tuple[Change, Lease]:
        """One replica's round in one write transaction (one turn of the single writer):
        record it alive, drop replicas silent since
        ``forget_before``, and attempt ``lease`` (:meth:`acquire_lease`)."""
        async with self._tx() as db:
            await _seen(db, replica_id, name, url, now)
            await db.run("DELETE FROM replicas WHERE last_seen < :t", t=forget_before)
            return await _acquire(db, lease, replica_id, now, ttl)

    async def release_lease(self, name: str, holder: str, now: float) -> bool:
        """End ``holder``'s lease ``name`` at once (a clean shutdown: the next replica
        takes over at its next attempt); False when it did not hold it."""
        async with self._tx() as db:
            return await db.run(
                "UPDATE leases SET expires_at = :now WHERE name = :name AND holder = :holder"
                " AND expires_at > :now", name=name, holder=holder, now=now) > 0

    async def get_lease(self, name: str) -> Lease | None:
        async with self._read() as db:
            row = await db.one("SELECT * FROM leases WHERE name = :name", name=name)
        return _lease(row) if row else None
