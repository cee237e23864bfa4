"""Durable state of the control plane (SQLite or PostgreSQL, see :mod:`control_plane.db`):
nodes, purges, purge_acks.

The schema is Alembic's (``control_plane/migrations``), brought up to date on
:meth:`Store.open`. Every write runs in one serialised transaction, so a crash never
leaves a purge without its acknowledgement rows or a half-recorded ack. A purge's seq is
the setting ``purge_seq`` bumped in the purge's own transaction: unique, never reused,
and committed in seq order across every replica. Keys, rate-limit policies and settings
live in :mod:`control_plane.store_admin`; services in :mod:`control_plane.store_services`;
replicas and the leader lease in :mod:`control_plane.store_cluster`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from control_plane.db import DatabaseUnavailable
from control_plane.models import PURGED_TIERS, Ack, Node, Purge, PurgeType
from control_plane.store_admin import AdminTables, bump_setting
from control_plane.store_cluster import ClusterTables
from control_plane.store_services import ServiceTables

# Fan-out order inside a purge: mid tier, then edges, each by name.
_ACK_ORDER = "CASE a.tier WHEN 'mid' THEN 0 ELSE 1 END, a.node"
_ACK_SELECT = (
    "SELECT a.purge_id, a.node, a.tier, a.state, a.purged, a.acked_at, a.error, a.attempts,"
    " n.admin_url FROM purge_acks a LEFT JOIN nodes n ON n.name = a.node"
)
PURGE_SEQ = "purge_seq"
Row = Mapping[str, Any]


def _node(row: Row) -> Node:
    return Node(
        name=row["name"],
        tier=row["tier"],
        host=row["host"],
        port=row["port"],
        admin_url=row["admin_url"],
        registered_at=row["registered_at"],
        last_seen=row["last_seen"],
        purge_seq=row["purge_seq"],
    )


def _ack(row: Row) -> Ack:
    return Ack(
        node=row["node"],
        tier=row["tier"],
        state=row["state"],
        purged=row["purged"],
        acked_at=row["acked_at"],
        error=row["error"],
        attempts=row["attempts"],
        admin_url=row["admin_url"],
    )


class Store(AdminTables, ServiceTables, ClusterTables):
    """The control plane's database at ``target``: a SQLite path (``":memory:"`` for a
    throwaway) or a ``sqlite:///`` / ``postgresql://`` URL."""

    def __init__(self, target: str | Path) -> None:
        super().__init__(target)
        self._last_nodes: dict[str | None, list[Node]] = {}  # by tier: for outages

    # -- nodes ---------------------------------------------------------------------------

    async def upsert_node(
        self, name: str, *, tier: str, host: str, port: int, admin_url: str, now: float
    ) -> Node:
        """Insert or replace the node ``name``; returns it as stored."""
        async with self._tx() as db:
            await db.run(
                "INSERT INTO nodes (name, tier, host, port, admin_url, registered_at)"
                " VALUES (:name, :tier, :host, :port, :url, :now) ON CONFLICT (name) DO UPDATE"
                " SET tier = excluded.tier, host = excluded.host, port = excluded.port,"
                " admin_url = excluded.admin_url, registered_at = excluded.registered_at",
                name=name, tier=tier, host=host, port=port, url=admin_url, now=now,
            )
        node = await self.get_node(name)
        assert node is not None
        return node

    async def list_nodes(self, tier: str | None = None) -> list[Node]:
        """All nodes (or those of ``tier``), by tier then name."""
        where = " WHERE tier = :tier" if tier is not None else ""
        async with self._read() as db:
            rows = await db.all(f"SELECT * FROM nodes{where} ORDER BY tier, name", tier=tier)
        return [_node(r) for r in rows]

    async def nodes_or_last(self, tier: str | None = None) -> tuple[list[Node], str | None]:
        """:meth:`list_nodes`, or while the database is unreachable the list this replica
        last read: ``(nodes, None)`` fresh, ``(nodes, error)`` from memory (read
        endpoints answer from what they can)."""
        last = self._last_nodes
        try:
            nodes = await self.list_nodes(tier)
        except DatabaseUnavailable as exc:
            if tier not in last:
                raise
            return last[tier], str(exc)
        last[tier] = nodes
        return nodes, None

    async def get_node(self, name: str) -> Node | None:
        async with self._read() as db:
            row = await db.one("SELECT * FROM nodes WHERE name = :name", name=name)
        return _node(row) if row else None

    async def delete_node(self, name: str) -> bool:
        """Remove a node and its unacknowledged purge work (a node that left the registry
        cannot acknowledge); returns False when there was no such node. Purges that thereby
        have every remaining node acked are completed by :meth:`complete_settled`."""
        async with self._tx() as db:
            found = await db.run("DELETE FROM nodes WHERE name = :name", name=name) > 0
            await db.run(
                "DELETE FROM purge_acks WHERE node = :name AND state != 'acked'"
                " AND purge_id IN (SELECT id FROM purges WHERE completed_at IS NULL)",
                name=name,
            )
            await db.run("DELETE FROM node_services WHERE node = :name", name=name)
        return found

    async def heartbeat(
        self,
        name: str,
        *,
        tier: str,
        host: str,
        port: int,
        admin_url: str,
        purge_seq: int | None,
        now: float,
    ) -> Node:
        """Record a node's heartbeat: register it (or update its address) and remember
        when it was last seen and the last purge seq it applied."""
        async with self._tx() as db:
            await db.run(
                "INSERT INTO nodes (name, tier, host, port, admin_url, registered_at,"
                " last_seen, purge_seq) VALUES (:name, :tier, :host, :port, :url, :now, :now,"
                " :seq) ON CONFLICT (name) DO UPDATE SET tier = excluded.tier,"
                " host = excluded.host, port = excluded.port, admin_url = excluded.admin_url,"
                " last_seen = excluded.last_seen, purge_seq = excluded.purge_seq",
                name=name, tier=tier, host=host, port=port, url=admin_url, now=now,
                seq=purge_seq,
            )
        node = await self.get_node(name)
        assert node is not None
        return node

    async def head_seq(self) -> int:
        """The highest purge seq ever given (0 before the first purge)."""
        async with self._read() as db:
            row = await db.one("SELECT COALESCE(MAX(seq), 0) AS head FROM purges")
        return int(row["head"]) if row else 0

    async def purges_after(self, seq: int, limit: int) -> list[Purge]:
        """Up to ``limit`` purges with a seq above ``seq``, lowest first (for catch-up)."""
        async with self._read() as db:
            rows = await db.all("SELECT id FROM purges WHERE seq > :seq ORDER BY seq"
                                " LIMIT :limit", seq=seq, limit=limit)
        return await self._purges_by_ids([r["id"] for r in rows])

    # -- purges --------------------------------------------------------------------------

    async def create_purge(
        self, kind: PurgeType, value: str | None, soft: bool, now: float
    ) -> Purge:
        """Record a purge with one pending ack per mid-tier and edge node registered now,
        in one transaction. With no such node the purge is complete at once."""
        purge_id = str(uuid.uuid4())
        async with self._tx() as db:
            seq = await bump_setting(db, PURGE_SEQ)
            await db.run(
                "INSERT INTO purges (seq, id, type, value, soft, created_at)"
                " VALUES (:seq, :id, :type, :value, :soft, :now)",
                seq=seq, id=purge_id, type=kind, value=value, soft=int(soft), now=now,
            )
            targets = await db.run(
                "INSERT INTO purge_acks (purge_id, node, tier)"
                " SELECT CAST(:id AS TEXT), name, tier FROM nodes WHERE tier IN :tiers",
                id=purge_id, tiers=tuple(PURGED_TIERS),
            )
            if targets == 0:
                await db.run("UPDATE purges SET completed_at = :now WHERE id = :id",
                             now=now, id=purge_id)
        purge = await self.get_purge(purge_id)
        assert purge is not None
        return purge

    async def record_result(
        self,
        purge_id: str,
        node: str,
        *,
        ok: bool,
        purged: int | None,
        error: str | None,
        now: float,
    ) -> Purge | None:
        """Record one node's answer. Returns the purge when this answer completed it
        (every node acked; ``completed_at`` set in the same transaction), else None."""
        async with self._tx() as db:
            if ok:
                changed = await db.run(
                    "UPDATE purge_acks SET state = 'acked', purged = :purged, acked_at = :now,"
                    " error = NULL, attempts = attempts + 1"
                    " WHERE purge_id = :id AND node = :node",
                    purged=purged, now=now, id=purge_id, node=node,
                )
            else:
                changed = await db.run(
                    "UPDATE purge_acks SET state = 'failed', error = :error,"
                    " attempts = attempts + 1 WHERE purge_id = :id AND node = :node",
                    error=error, id=purge_id, node=node,
                )
            if changed == 0 or not ok:
                return None
            completed = await db.run(
                "UPDATE purges SET completed_at = :now WHERE id = :id AND completed_at IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM purge_acks WHERE purge_id = :id"
                " AND state != 'acked')",
                now=now, id=purge_id,
            ) > 0
        return await self.get_purge(purge_id) if completed else None

    async def reopen(self, purge_id: str, nodes: Iterable[str]) -> None:
        """Set the acks of ``nodes`` for an open purge back to ``pending`` (to be sent
        again)."""
        names = tuple(nodes)
        if not names:
            return
        async with self._tx() as db:
            await db.run(
                "UPDATE purge_acks SET state = 'pending', acked_at = NULL"
                " WHERE purge_id = :id AND state = 'acked' AND node IN :names"
                " AND purge_id IN (SELECT id FROM purges WHERE completed_at IS NULL)",
                id=purge_id, names=names,
            )

    async def complete_settled(self, now: float) -> list[Purge]:
        """Complete open purges that have no unacknowledged node left (for example after
        a node was removed); returns them."""
        async with self._tx() as db:
            rows = await db.all(
                "SELECT id FROM purges p WHERE completed_at IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM purge_acks a WHERE a.purge_id = p.id AND a.state != 'acked')"
            )
            ids = [r["id"] for r in rows]
            if ids:
                await db.run("UPDATE purges SET completed_at = :now WHERE id IN :ids",
                             now=now, ids=tuple(ids))
        return await self._purges_by_ids(ids)

    async def get_purge(self, purge_id: str) -> Purge | None:
        found = await self._purges_by_ids([purge_id])
        return found[0] if found else None

    async def list_purges(self, limit: int = 20) -> list[Purge]:
        """The newest ``limit`` purges, newest first."""
        async with self._read() as db:
            rows = await db.all("SELECT id FROM purges ORDER BY seq DESC LIMIT :limit",
                                limit=limit)
        return await self._purges_by_ids([r["id"] for r in rows])

    async def open_purges(self, exclude: Iterable[str] = (), limit: int = 500) -> list[Purge]:
        """Up to ``limit`` purges not yet complete, oldest (lowest seq) first, except the
        ``exclude`` ids."""
        skip = set(exclude)
        async with self._read() as db:
            rows = await db.all("SELECT id FROM purges WHERE completed_at IS NULL"
                                " ORDER BY seq LIMIT :limit", limit=limit + len(skip))
        ids = [r["id"] for r in rows if r["id"] not in skip]
        return await self._purges_by_ids(ids[:limit])

    async def _purges_by_ids(self, ids: list[str]) -> list[Purge]:
        """Load purges with their acks, keeping the order of ``ids``."""
        if not ids:
            return []
        async with self._read() as db:
            rows = {r["id"]: r for r in await db.all(
                "SELECT * FROM purges WHERE id IN :ids", ids=tuple(ids))}
            acks: dict[str, list[Ack]] = {}
            for r in await db.all(f"{_ACK_SELECT} WHERE a.purge_id IN :ids"
                                  f" ORDER BY {_ACK_ORDER}", ids=tuple(ids)):
                acks.setdefault(r["purge_id"], []).append(_ack(r))
        return [
            Purge(
                id=r["id"],
                seq=r["seq"],
                type=r["type"],
                value=r["value"],
                soft=bool(r["soft"]),
                created_at=r["created_at"],
                completed_at=r["completed_at"],
                acks=tuple(acks.get(r["id"], ())),
            )
            for r in (rows[i] for i in ids if i in rows)
        ]
