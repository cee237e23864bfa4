"""Durable state of the control plane in SQLite (via aiosqlite): nodes, purges, purge_acks.

The schema is created on :meth:`Store.open` (see :mod:`control_plane.db`). Every write
runs in one ``BEGIN IMMEDIATE`` transaction, so a crash never leaves a purge without its
acknowledgement rows or a half-recorded ack. ``purges.seq`` is ``AUTOINCREMENT`` and
therefore never reused, even after rows are deleted. Keys, rate-limit policies and
settings live in :mod:`control_plane.store_admin`.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

from control_plane.models import PURGED_TIERS, Ack, Node, Purge, PurgeType
from control_plane.store_admin import ADMIN_SCHEMA, AdminTables
from control_plane.store_services import SERVICES_SCHEMA, ServiceTables

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    name          TEXT PRIMARY KEY,
    tier          TEXT NOT NULL CHECK (tier IN ('edge', 'mid', 'origin', 'router')),
    host          TEXT NOT NULL,
    port          INTEGER NOT NULL,
    admin_url     TEXT NOT NULL,
    registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS purges (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    value        TEXT,
    soft         INTEGER NOT NULL,
    created_at   REAL NOT NULL,
    completed_at REAL
);
CREATE TABLE IF NOT EXISTS purge_acks (
    purge_id TEXT NOT NULL REFERENCES purges(id) ON DELETE CASCADE,
    node     TEXT NOT NULL,
    tier     TEXT NOT NULL,
    state    TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'acked', 'failed')),
    purged   INTEGER,
    acked_at REAL,
    error    TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (purge_id, node)
);
CREATE INDEX IF NOT EXISTS purges_open ON purges (seq) WHERE completed_at IS NULL;
"""

# Fan-out order inside a purge: mid tier, then edges, each by name.
_ACK_ORDER = "CASE a.tier WHEN 'mid' THEN 0 ELSE 1 END, a.node"
_ACK_SELECT = (
    "SELECT a.purge_id, a.node, a.tier, a.state, a.purged, a.acked_at, a.error, a.attempts,"
    " n.admin_url FROM purge_acks a LEFT JOIN nodes n ON n.name = a.node"
)


def _node(row: sqlite3.Row) -> Node:
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


def _ack(row: sqlite3.Row) -> Ack:
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


class Store(AdminTables, ServiceTables):
    """The control plane's SQLite database at ``path`` (``":memory:"`` for a throwaway)."""

    SCHEMAS = (SCHEMA, ADMIN_SCHEMA, SERVICES_SCHEMA)
    COLUMNS = (
        ("nodes", "last_seen", "REAL"),
        ("nodes", "purge_seq", "INTEGER"),
        ("api_keys", "services", "TEXT"),  # JSON list: the key is limited to them
    )

    # -- nodes ---------------------------------------------------------------------------

    async def upsert_node(
        self, name: str, *, tier: str, host: str, port: int, admin_url: str, now: float
    ) -> Node:
        """Insert or replace the node ``name``; returns it as stored."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO nodes (name, tier, host, port, admin_url, registered_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " tier = excluded.tier, host = excluded.host, port = excluded.port,"
                " admin_url = excluded.admin_url, registered_at = excluded.registered_at",
                (name, tier, host, port, admin_url, now),
            )
        node = await self.get_node(name)
        assert node is not None
        return node

    async def list_nodes(self, tier: str | None = None) -> list[Node]:
        """All nodes (or those of ``tier``), by tier then name."""
        sql = "SELECT * FROM nodes"
        params: tuple[Any, ...] = ()
        if tier is not None:
            sql, params = sql + " WHERE tier = ?", (tier,)
        async with self._read() as db, db.execute(sql + " ORDER BY tier, name", params) as cur:
            return [_node(r) for r in await cur.fetchall()]

    async def get_node(self, name: str) -> Node | None:
        async with (
            self._read() as db,
            db.execute("SELECT * FROM nodes WHERE name = ?", (name,)) as cur,
        ):
            row = await cur.fetchone()
        return _node(row) if row else None

    async def delete_node(self, name: str) -> bool:
        """Remove a node and its unacknowledged purge work (a node that left the registry
        cannot acknowledge); returns False when there was no such node. Purges that thereby
        have every remaining node acked are completed by :meth:`complete_settled`."""
        async with self._tx() as db:
            cur = await db.execute("DELETE FROM nodes WHERE name = ?", (name,))
            found = cur.rowcount > 0
            await db.execute(
                "DELETE FROM purge_acks WHERE node = ? AND state != 'acked'"
                " AND purge_id IN (SELECT id FROM purges WHERE completed_at IS NULL)",
                (name,),
            )
            await db.execute("DELETE FROM node_services WHERE node = ?", (name,))
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
            await db.execute(
                "INSERT INTO nodes (name, tier, host, port, admin_url, registered_at,"
                " last_seen, purge_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET tier = excluded.tier, host = excluded.host,"
                " port = excluded.port, admin_url = excluded.admin_url,"
                " last_seen = excluded.last_seen, purge_seq = excluded.purge_seq",
                (name, tier, host, port, admin_url, now, now, purge_seq),
            )
        node = await self.get_node(name)
        assert node is not None
        return node

    async def head_seq(self) -> int:
        """The highest purge seq ever given (0 before the first purge)."""
        async with (
            self._read() as db,
            db.execute("SELECT COALESCE(MAX(seq), 0) AS head FROM purges") as cur,
        ):
            row = await cur.fetchone()
        return int(row["head"]) if row else 0

    async def purges_after(self, seq: int, limit: int) -> list[Purge]:
        """Up to ``limit`` purges with a seq above ``seq``, lowest first (for catch-up)."""
        sql = "SELECT id FROM purges WHERE seq > ? ORDER BY seq LIMIT ?"
        async with self._read() as db, db.execute(sql, (seq, limit)) as cur:
            ids = [r["id"] for r in await cur.fetchall()]
        return await self._purges_by_ids(ids)

    # -- purges --------------------------------------------------------------------------

    async def create_purge(
        self, kind: PurgeType, value: str | None, soft: bool, now: float
    ) -> Purge:
        """Record a purge with one pending ack per mid-tier and edge node registered now,
        in one transaction. With no such node the purge is complete at once."""
        purge_id = str(uuid.uuid4())
        tiers = ",".join("?" * len(PURGED_TIERS))
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO purges (id, type, value, soft, created_at) VALUES (?, ?, ?, ?, ?)",
                (purge_id, kind, value, int(soft), now),
            )
            cur = await db.execute(
                "INSERT INTO purge_acks (purge_id, node, tier)"
                f" SELECT ?, name, tier FROM nodes WHERE tier IN ({tiers})",
                (purge_id, *PURGED_TIERS),
            )
            if cur.rowcount == 0:
                await db.execute("UPDATE purges SET completed_at = ? WHERE id = ?", (now, purge_id))
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
                cur = await db.execute(
                    "UPDATE purge_acks SET state = 'acked', purged = ?, acked_at = ?,"
                    " error = NULL, attempts = attempts + 1 WHERE purge_id = ? AND node = ?",
                    (purged, now, purge_id, node),
                )
            else:
                cur = await db.execute(
                    "UPDATE purge_acks SET state = 'failed', error = ?,"
                    " attempts = attempts + 1 WHERE purge_id = ? AND node = ?",
                    (error, purge_id, node),
                )
            if cur.rowcount == 0 or not ok:
                return None
            cur = await db.execute(
                "UPDATE purges SET completed_at = ? WHERE id = ? AND completed_at IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM purge_acks WHERE purge_id = ?"
                " AND state != 'acked')",
                (now, purge_id, purge_id),
            )
            completed = cur.rowcount > 0
        return await self.get_purge(purge_id) if completed else None

    async def reopen(self, purge_id: str, nodes: Iterable[str]) -> None:
        """Set the acks of ``nodes`` for an open purge back to ``pending`` (to be sent
        again)."""
        names = list(nodes)
        if not names:
            return
        marks = ",".join("?" * len(names))
        async with self._tx() as db:
            await db.execute(
                "UPDATE purge_acks SET state = 'pending', acked_at = NULL"
                f" WHERE purge_id = ? AND state = 'acked' AND node IN ({marks})"
                " AND purge_id IN (SELECT id FROM purges WHERE completed_at IS NULL)",
                (purge_id, *names),
            )

    async def complete_settled(self, now: float) -> list[Purge]:
        """Complete open purges that have no unacknowledged node left (for example after
        a node was removed); returns them."""
        async with self._tx() as db:
            cur = await db.execute(
                "SELECT id FROM purges p WHERE completed_at IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM purge_acks a WHERE a.purge_id = p.id AND a.state != 'acked')"
            )
            ids = [r["id"] for r in await cur.fetchall()]
            for purge_id in ids:
                await db.execute("UPDATE purges SET completed_at = ? WHERE id = ?", (now, purge_id))
        return await self._purges_by_ids(ids)

    async def get_purge(self, purge_id: str) -> Purge | None:
        found = await self._purges_by_ids([purge_id])
        return found[0] if found else None

    async def list_purges(self, limit: int = 20) -> list[Purge]:
        """The newest ``limit`` purges, newest first."""
        async with (
            self._read() as db,
            db.execute("SELECT id FROM purges ORDER BY seq DESC LIMIT ?", (limit,)) as cur,
        ):
            ids = [r["id"] for r in await cur.fetchall()]
        return await self._purges_by_ids(ids)

    async def open_purges(self, exclude: Iterable[str] = (), limit: int = 500) -> list[Purge]:
        """Up to ``limit`` purges not yet complete, oldest (lowest seq) first, except the
        ``exclude`` ids."""
        skip = set(exclude)
        sql = "SELECT id FROM purges WHERE completed_at IS NULL ORDER BY seq LIMIT ?"
        async with self._read() as db, db.execute(sql, (limit + len(skip),)) as cur:
            ids = [r["id"] for r in await cur.fetchall() if r["id"] not in skip]
        return await self._purges_by_ids(ids[:limit])

    async def _purges_by_ids(self, ids: list[str]) -> list[Purge]:
        """Load purges with their acks, keeping the order of ``ids``."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        async with self._read() as db:
            async with db.execute(f"SELECT * FROM purges WHERE id IN ({marks})", ids) as cur:
                rows = {r["id"]: r for r in await cur.fetchall()}
            async with db.execute(
                f"{_ACK_SELECT} WHERE a.purge_id IN ({marks}) ORDER BY {_ACK_ORDER}", ids
            ) as cur:
                acks: dict[str, list[Ack]] = {}
                for r in await cur.fetchall():
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
