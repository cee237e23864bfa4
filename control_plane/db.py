"""The SQLite connection every table module of the control plane shares (via aiosqlite).

:class:`Database` opens the file (WAL journal, ``synchronous=FULL``: a committed write
survives a crash or power loss), creates every table module's schema, adds columns that
older files lack, and serialises use of its one connection: every write runs in one
``BEGIN IMMEDIATE`` transaction (:meth:`Database._tx`), so no coroutine sees another's
half-done write.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from cdn_core.errors import StartupError


class Database:
    """Base of :class:`control_plane.store.Store`. Subclasses list their DDL in
    ``SCHEMAS`` and columns added since the first release in ``COLUMNS``
    (``(table, column, declaration)``)."""

    SCHEMAS: tuple[str, ...] = ()
    COLUMNS: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect, create the parent directory, the schema and missing columns.

        Raises:
            StartupError: the file cannot be created or is not a usable SQLite database.
        """
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StartupError(f"cannot open database {self.path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            for schema in self.SCHEMAS:
                await db.executescript(schema)
            for table, column, decl in self.COLUMNS:
                async with db.execute(f"PRAGMA table_info({table})") as cur:
                    have = {r["name"] for r in await cur.fetchall()}
                if column not in have:
                    await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        except sqlite3.Error as exc:
            await db.close()
            raise StartupError(f"cannot open database {self.path}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            async with self._lock:
                await db.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed on success, rolled back on any error."""
        async with self._lock:
            db = self._conn()
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.commit()
            except BaseException:
                await db.rollback()
                raise

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._conn()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db
