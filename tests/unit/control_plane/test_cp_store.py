"""The store (control_plane.store) on SQLite and PostgreSQL: transactions, seq, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_core.errors import StartupError
from control_plane.store import Store


async def _store(target: str | Path) -> Store:
    store = Store(target)
    await store.open()
    return store


async def test_purge_gets_one_ack_per_mid_and_edge(cp_db: str) -> None:
    store = await _store(cp_db)
    for name, tier in [("edge1", "edge"), ("mid1", "mid"), ("o", "origin"), ("r", "router")]:
        await store.upsert_node(name, tier=tier, host="h", port=1, admin_url="http://h", now=1.0)
    purge = await store.create_purge("url", "http://a/b", True, now=5.0)
    assert [(a.node, a.state) for a in purge.acks] == [("mid1", "pending"), ("edge1", "pending")]
    assert purge.soft is True and purge.completed_at is None
    assert (
        await store.record_result(purge.id, "mid1", ok=True, purged=2, error=None, now=6.0) is None
    )
    await store.record_result(purge.id, "edge1", ok=False, purged=None, error="x", now=6.5)
    assert (await store.get_purge(purge.id)).state == "partial"  # type: ignore[union-attr]
    done = await store.record_result(purge.id, "edge1", ok=True, purged=0, error=None, now=7.0)
    assert done is not None and done.completed_at == 7.0 and done.acks[1].attempts == 2
    await store.close()


async def test_no_targets_is_complete_at_once(cp_db: str) -> None:
    store = await _store(cp_db)
    purge = await store.create_purge("all", None, False, now=5.0)
    assert purge.state == "complete" and purge.completed_at == 5.0
    await store.close()


async def test_seq_and_rows_survive_reopen(cp_db: str) -> None:
    store = await _store(cp_db)
    await store.upsert_node("e", tier="edge", host="h", port=1, admin_url="http://h", now=1.0)
    first = await store.create_purge("tag", "t", False, now=2.0)
    await store.close()
    store = await _store(cp_db)
    assert [n.name for n in await store.list_nodes()] == ["e"]
    assert (await store.open_purges())[0].id == first.id
    second = await store.create_purge("tag", "t", False, now=3.0)
    assert second.seq == first.seq + 1
    assert [p.id for p in await store.list_purges(10)] == [second.id, first.id]
    await store.close()


async def test_failed_transaction_rolls_back(cp_db: str) -> None:
    store = await _store(cp_db)
    with pytest.raises(RuntimeError):
        async with store._tx() as db:
            await db.run(
                "INSERT INTO purges (seq, id, type, value, soft, created_at)"
                " VALUES (1, 'x', 'all', NULL, 0, 1)"
            )
            raise RuntimeError("crash between the purge row and its acks")
    assert await store.get_purge("x") is None
    await store.close()


async def test_deleting_a_node_drops_its_open_work(cp_db: str) -> None:
    store = await _store(cp_db)
    for name in ("e1", "e2"):
        await store.upsert_node(name, tier="edge", host="h", port=1, admin_url="http://h", now=1.0)
    purge = await store.create_purge("all", None, False, now=2.0)
    await store.record_result(purge.id, "e1", ok=True, purged=1, error=None, now=3.0)
    assert await store.delete_node("e2") is True
    assert await store.delete_node("e2") is False
    settled = await store.complete_settled(now=4.0)
    assert [p.id for p in settled] == [purge.id] and settled[0].completed_at == 4.0
    await store.close()


async def test_unusable_file_is_a_startup_error(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not a sqlite database, not at all" * 10)
    with pytest.raises(StartupError, match="not.db"):
        await Store(bad).open()
