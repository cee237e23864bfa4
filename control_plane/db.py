"""The database every table module of the control plane shares: SQLAlchemy 2 async Core
on SQLite (aiosqlite; the embedded default of ``cdnctl up``) or PostgreSQL (asyncpg;
several control-plane replicas share one).

:class:`Database` turns the configured target into an engine (:func:`engine_url`),
brings the schema to the newest Alembic revision on :meth:`Database.open` (see
:mod:`control_plane.migrate`) and hands out transactions:

- **Writes are serialised** (:meth:`Database._tx`), on both engines: SQLite by one
  connection behind a lock and ``BEGIN IMMEDIATE``; PostgreSQL by a transaction-level
  advisory lock taken first in every write transaction, across every replica. The
  control plane writes little (purges, heartbeats, key and policy changes), and a single
  writer makes every read-modify-write in the table modules correct without per-query
  locking, and makes commit order equal purge seq order (a node catching up by seq can
  never see seq 11 committed before seq 10).
- **Reads** on PostgreSQL run concurrently from a connection pool.
- **An unreachable database** raises :class:`DatabaseUnavailable` from either helper, so
  the API answers 503 with a JSON error (never a traceback) and background loops retry.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cdn_core.errors import CdnError, StartupError

# pg_advisory_xact_lock key of the single writer (any fixed 64-bit number; "cdnw").
WRITE_LOCK_KEY = 0x63646E77
# Seconds to wait for a PostgreSQL connection, and for one statement, before the database
# counts as unavailable (the control plane's statements take milliseconds; a server that
# hangs must not hold a heartbeat or an API call for longer).
CONNECT_TIMEOUT = 3.0
STATEMENT_TIMEOUT = 5.0
# Seconds a store opening a SQLite file keeps retrying while another process holds its
# lock (two replicas of `cdnctl up` starting together on one file, each migrating).
SQLITE_OPEN_PATIENCE = 30.0
# Seconds one SQLite statement waits for another process's lock (sqlite3's default).
SQLITE_BUSY_TIMEOUT = 5.0

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg"}


# URL parameters passed on to asyncpg (the others would fail at connect time).
_PG_PARAMS = {"ssl", "application_name", "prepared_statement_cache_size"}


class DatabaseUnavailable(CdnError):
    """The database cannot be reached or refused the operation for a reason that is not
    the request's fault (connection refused or lost, server shutting down, timeout)."""


class OutageNotice:
    """For a background loop: a database outage logged once at WARNING (not a traceback
    every round), and its end at INFO."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self.down = False

    def failed(self, exc: DatabaseUnavailable) -> None:
        if not self.down:
            self._log.warning("%s paused: %s", self._what, exc)
        self.down = True

    def ok(self) -> None:
        if self.down:
            self._log.info("%s resumed: the database answers again", self._what)
        self.down = False


def engine_url(target: str | Path) -> sa.URL:
    """The SQLAlchemy URL for ``target``: a file path (SQLite), ``sqlite:///path``,
    ``sqlite:///:memory:``, or ``postgresql://user:password@host:port/db``; the async
    driver (aiosqlite, asyncpg) is filled in.

    Raises:
        StartupError: ``target`` names another kind of database or is not a URL.
    """
    text = str(target)
    if "://" not in text:
        return sa.URL.create("sqlite+aiosqlite", database=text)
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StartupError(f"bad database URL: {exc}") from exc
    backend = url.get_backend_name()
    if backend not in _DRIVERS:
        raise StartupError(
            f"unsupported database {backend!r} in {redacted(url)}: use sqlite:/// or postgresql://")
    query = dict(url.query)
    if backend != "sqlite":
        # libpq's sslmode is asyncpg's ssl (disable, prefer, require, verify-ca, ...).
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
        unknown = sorted(set(query) - _PG_PARAMS)
        if unknown:
            raise StartupError(f"unsupported parameter {unknown[0]!r} in {redacted(url)}:"
                               f" use {', '.join(sorted(_PG_PARAMS))}")
    return url.set(drivername=_DRIVERS[backend], query=query)


def redacted(url: sa.URL) -> str:
    """``url`` with its password hidden, for logs and errors."""
    return url.render_as_string(hide_password=True)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database is out of reach rather than a bad query."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError,
                            sa.exc.TimeoutError, sa.exc.DisconnectionError, OSError,
                            TimeoutError))


@functools.lru_cache(maxsize=512)
def _statement(sql: str, expanding: frozenset[str]) -> sa.TextClause:
    stmt = sa.text(sql)
    if expanding:
        stmt = stmt.bindparams(*(sa.bindparam(n, expanding=True) for n in sorted(expanding)))
    return stmt


def _compiled(sql: str, params: Mapping[str, Any]) -> sa.TextClause:
    return _statement(sql, frozenset(k for k, v in params.items()
                                     if isinstance(v, (list, tuple))))


class Tx:
    """One connection inside a transaction. SQL is text with ``:name`` parameters; a list
    or tuple value expands to ``(v1, v2, ...)`` (write ``col IN :names``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def all(self, sql: str, **params: Any) -> list[RowMapping]:
        """Every row of ``sql`` as a mapping of column name to value."""
        result = await self.conn.execute(_compiled(sql, params), params)
        return list(result.mappings().all())

    async def one(self, sql: str, **params: Any) -> RowMapping | None:
        """The first row of ``sql``, or None."""
        result = await self.conn.execute(_compiled(sql, params), params)
        return result.mappings().first()

    async def run(self, sql: str, **params: Any) -> int:
        """Execute ``sql``; returns the number of rows it changed."""
        result = await self.conn.execute(_compiled(sql, params), params)
        return int(result.rowcount)

    async def run_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute ``sql`` once per parameter mapping in ``rows`` (none: nothing)."""
        if rows:
            await self.conn.execute(sa.text(sql), list(rows))


class Database:
    """Base of :class:`control_plane.store.Store`: the engine and the transaction helpers.

    ``target`` is a SQLite path or a database URL (see :func:`engine_url`).
    """

    def __init__(self, target: str | Path) -> None:
        self.url = engine_url(target)
        self.dialect = self.url.get_backend_name()
        self._engine: AsyncEngine | None = None
        # SQLite has one connection; this lock is its single writer (and reader).
        self._lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def display(self) -> str:
        """The target for logs: the SQLite path, or the URL without its password."""
        if self.dialect == "sqlite":
            return self.url.database or ":memory:"
        return redacted(self.url.set(drivername=self.dialect))

    async def open(self) -> None:
        """Connect and bring the schema to the newest revision (creating it when new).

        Raises:
            StartupError: the file cannot be created, is not a usable SQLite database
                (or stays locked by another process for SQLITE_OPEN_PATIENCE seconds),
                the server cannot be reached, or a migration fails (naming the target).
        """
        # Alembic announces each of its plugins at INFO when imported; its upgrades stay.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        from control_plane import migrate  # imports alembic: only when a store opens

        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_OPEN_PATIENCE
        delay = 0.05
        while True:
            try:
                self._engine = self._create_engine()
                await migrate.upgrade(self._engine, self.dialect)
                return
            except (OSError, sa.exc.SQLAlchemyError, ValueError, TypeError) as exc:
                # (asyncpg raises ValueError/TypeError for bad connection parameters)
                await self.close()
                if _sqlite_locked(exc) and loop.time() < deadline:
                    # Another replica (or cdnctl) holds the file's write lock while it
                    # migrates: wait for it, as the PostgreSQL path waits on its lock.
                    await _pause(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                raise StartupError(f"cannot open database {self.display}: {_why(exc)}") from exc

    def _create_engine(self) -> AsyncEngine:
        if self.dialect != "sqlite":
            return create_async_engine(
                self.url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                pool_timeout=CONNECT_TIMEOUT,
                connect_args={"timeout": CONNECT_TIMEOUT, "command_timeout": STATEMENT_TIMEOUT})
        path = self.url.database or ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url, poolclass=sa.pool.StaticPool,
                                     connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event below emit BEGIN itself (pysqlite's own
            # transaction handling would defer it and break IMMEDIATE).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # A committed write survives a crash or power loss.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Tx]:
        """One write transaction: committed on success, rolled back on any error.

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        async with self._connection(write=True) as tx:
            yield tx

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        """A connection for reads (its transaction is rolled back at the end).

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        async with self._connection(write=False) as tx:
            yield tx

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[Tx]:
        async with self._serial(), self._translated():
            conn = await self._engine_or_fail().connect()
            try:
                if write:
                    await conn.begin()
                    if self.dialect == "postgresql":
                        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                                           {"k": WRITE_LOCK_KEY})
                yield Tx(conn)
                if write:
                    await conn.commit()
            except asyncio.CancelledError:
                # asyncpg: a query cut off mid-flight leaves the connection busy; back in
                # the pool it would fail its next user ("another operation is in
                # progress"). Drop it instead; the server rolls its transaction back.
                # (aiosqlite finishes each call in its thread: its one connection stays.)
                if self.dialect == "postgresql":
                    await asyncio.shield(conn.invalidate())
                raise
            finally:
                await asyncio.shield(conn.close())  # rolls back what was not committed

    @asynccontextmanager
    async def _serial(self) -> AsyncIterator[None]:
        if self._lock is None:
            yield
        else:
            async with self._lock:
                yield

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        try:
            yield
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if is_unavailable(exc):
                raise DatabaseUnavailable(f"database unavailable: {_why(exc)}") from exc
            raise

    def _engine_or_fail(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("store is not open")
        return self._engine


def _sqlite_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's SQLITE_BUSY ("database is locked")."""
    return isinstance(exc, sa.exc.OperationalError) and "database is locked" in str(exc)


async def _pause(seconds: float) -> None:
    """The wait between attempts to open a locked SQLite file (a seam for tests)."""
    await asyncio.sleep(seconds)


def _why(exc: BaseException) -> str:
    """The useful line of a driver error (SQLAlchemy's text adds SQL and a link)."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()
    if not text and isinstance(cause, TimeoutError | sa.exc.TimeoutError):
        return f"no answer within {STATEMENT_TIMEOUT:g} s"
    return text[0] if text else type(cause).__name__
