"""The store on both engines: migrations on start, seqs across replicas, the leader lease,
and an unreachable database (control_plane.db, control_plane.migrate)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from cdn_core.errors import StartupError
from control_plane import migrate
from control_plane.db import DatabaseUnavailable, engine_url
from control_plane.lease import Lease, attempt
from control_plane.pgcluster import PgCluster
from control_plane.store import Store


async def _opened(target: str | Path) -> Store:
    store = Store(target)
    await store.open()
    return store


def test_targets_become_async_driver_urls() -> None:
    assert engine_url("run/control.db").drivername == "sqlite+aiosqlite"
    assert engine_url("sqlite:///x.db").database == "x.db"
    pg = engine_url("postgresql://u:secret@db.example/cdn")
    assert pg.drivername == "postgresql+asyncpg" and pg.database == "cdn"
    with pytest.raises(StartupError, match="unsupported database 'mysql'"):
        engine_url("mysql://u@h/db")
    with pytest.raises(StartupError) as info:
        engine_url("oracle://u:secret@h/db")
    assert "secret" not in str(info.value)
    # libpq's sslmode becomes asyncpg's ssl; other parameters asyncpg would choke on are
    # refused by name, and a malformed URL is one clear line (never the password).
    assert engine_url("postgresql://u@h/db?sslmode=require").query == {"ssl": "require"}
    with pytest.raises(StartupError, match="unsupported parameter 'foo'"):
        engine_url("postgresql://u:secret@h/db?foo=bar")
    with pytest.raises(StartupError, match="bad database URL") as info:
        engine_url("postgresql://u:secret@[::1/x")
    assert "secret" not in str(info.value)


async def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    store = await _opened(tmp_path / "a" / "b" / "c.db")
    assert (tmp_path / "a" / "b" / "c.db").exists()
    await store.close()


def _locked_file(path: Path) -> sqlite3.Connection:
    """Another process's view of ``path``: a connection holding its exclusive lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


async def test_sqlite_file_locked_by_another_process_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two replicas of `cdnctl up` on one file: the second waits for the first's migration.
    from control_plane import db

    holder = _locked_file(tmp_path / "c.db")
    pauses: list[float] = []

    async def release_then_continue(seconds: float) -> None:
        pauses.append(seconds)
        if holder.in_transaction:
            holder.commit()

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", 0.01)
    monkeypatch.setattr(db, "_pause", release_then_continue)
    store = await _opened(tmp_path / "c.db")
    assert pauses and await store.get_setting("absent") is None
    await store.close()
    holder.close()


async def test_sqlite_file_locked_past_the_patience_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from control_plane import db

    holder = _locked_file(tmp_path / "c.db")
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", 0.01)
    monkeypatch.setattr(db, "SQLITE_OPEN_PATIENCE", 0.0)
    with pytest.raises(StartupError, match=r"cannot open database .*c\.db: database is locked"):
        await _opened(tmp_path / "c.db")
    holder.close()


async def test_migrations_twice_and_at_once_are_harmless(cp_db: str) -> None:
    # Two replicas starting together, then a restart: one schema, at the head revision.
    first, second = await asyncio.gather(_opened(cp_db), _opened(cp_db))
    await first.create_purge("all", None, False, now=1.0)
    await first.close()
    await second.close()
    again = await _opened(cp_db)
    assert again._engine is not None
    assert await migrate.current(again._engine) == migrate.head()
    assert await again.head_seq() == 1
    await again.close()


async def test_concurrent_purges_from_two_replicas_get_gap_free_seqs(cp_db: str) -> None:
    a, b = await _opened(cp_db), await _opened(cp_db)
    made = await asyncio.gather(*(
        (a if i % 2 else b).create_purge("url", f"http://x/{i}", False, now=float(i))
        for i in range(40)))
    assert sorted(p.seq for p in made) == list(range(1, 41))
    caught_up = await b.purges_after(0, 100)
    assert [p.seq for p in caught_up] == list(range(1, 41))
    await a.close()
    await b.close()


async def test_database_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema as the release before issue 22 wrote it
        db.executescript(
            "CREATE TABLE nodes (name TEXT PRIMARY KEY, tier TEXT NOT NULL, host TEXT NOT NULL,"
            " port INTEGER NOT NULL, admin_url TEXT NOT NULL, registered_at REAL NOT NULL);"
            "CREATE TABLE purges (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL"
            " UNIQUE, type TEXT NOT NULL, value TEXT, soft INTEGER NOT NULL,"
            " created_at REAL NOT NULL, completed_at REAL);"
            "INSERT INTO nodes VALUES ('e', 'edge', 'h', 1, 'http://h', 1.0);"
            "INSERT INTO purges (id, type, value, soft, created_at, completed_at)"
            " VALUES ('p1', 'all', NULL, 0, 1.0, 1.0), ('p2', 'all', NULL, 0, 2.0, 2.0);")
    store = await _opened(path)
    assert [n.name for n in await store.list_nodes()] == ["e"]
    assert (await store.list_nodes())[0].last_seen is None  # column added
    nxt = await store.create_purge("all", None, False, now=3.0)
    assert nxt.seq == 3  # the seq counter starts after what was given
    await store.close()


def test_lease_attempts() -> None:
    created = attempt(None, "leader", "a", 10.0, 3.0)
    assert created == ("create", Lease("leader", "a", 10.0, 13.0, 1))
    lease = created[1]
    assert attempt(lease, "leader", "b", 12.9, 3.0) == ("keep", lease)
    assert attempt(lease, "leader", "a", 12.0, 3.0)[1].expires_at == 15.0
    change, taken = attempt(lease, "leader", "b", 13.0, 3.0)
    assert change == "take" and taken.holder == "b" and taken.term == 2
    assert taken.held_by("b", 15.9) and not taken.held_by("b", 16.0)


async def test_lease_moves_only_after_expiry(cp_db: str) -> None:
    a, b = await _opened(cp_db), await _opened(cp_db)
    assert (await a.acquire_lease("leader", "A", now=100.0, ttl=3.0))[0] == "create"
    change, lease = await b.acquire_lease("leader", "B", now=101.0, ttl=3.0)
    assert change == "keep" and lease.holder == "A"
    assert (await b.acquire_lease("leader", "B", now=103.5, ttl=3.0))[0] == "take"
    assert await a.release_lease("leader", "A", now=104.0) is False  # not A's any more
    assert await b.release_lease("leader", "B", now=104.0) is True
    assert (await a.acquire_lease("leader", "A", now=104.0, ttl=3.0))[1].term == 3
    await a.close()
    await b.close()


async def test_unreachable_postgresql_raises_unavailable_then_recovers(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    import socket
    import tempfile

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cdn-pg-")), port)
    cluster.start()
    try:
        store = await _opened(cluster.url())
        await store.upsert_node("e", tier="edge", host="h", port=1, admin_url="u", now=1.0)
        before = await store.create_purge("all", None, False, now=2.0)
        cluster.stop("immediate")
        with pytest.raises(DatabaseUnavailable, match="database unavailable"):
            await store.create_purge("all", None, False, now=3.0)
        with pytest.raises(DatabaseUnavailable):
            await store.list_nodes()
        cluster.start()
        assert (await store.get_purge(before.id)) is not None  # accepted before: kept
        after = await store.create_purge("all", None, False, now=4.0)
        assert after.seq == before.seq + 1
        await store.close()
    finally:
        cluster.stop("immediate")
