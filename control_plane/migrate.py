"""Schema migrations of the control plane's database (Alembic), run on every start.

The revisions live in ``control_plane/migrations/versions`` (shipped in the wheel); the
newest one is applied by :func:`upgrade` when a store opens. Running it again, or from
two replicas starting at once, is harmless: on PostgreSQL the upgrade holds a
session-level advisory lock, so the second replica waits and then finds the schema at
the newest revision; on SQLite the upgrade's transaction is ``BEGIN IMMEDIATE``. The
first revision creates tables only where missing, so a database made before migrations
existed is adopted as it is.

Add a revision with ``alembic -c control_plane/migrations/alembic.ini revision -m "..."``
and write its ``upgrade()`` by hand (statements that both SQLite and PostgreSQL accept;
``op.batch_alter_table`` for changes SQLite cannot do in place).
"""

from __future__ import annotations

import asyncio
import weakref

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPT_LOCATION = "control_plane:migrations"
# pg_advisory_lock key held while migrating ("cdnm").
MIGRATE_LOCK_KEY = 0x63646E6D
# Alembic's ``context`` and ``op`` are module-level proxies: one upgrade at a time per
# process (per event loop, since an asyncio.Lock belongs to one).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary())


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config for our revisions, bound to ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision id."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None
    return found


async def upgrade(engine: AsyncEngine, dialect: str) -> None:
    """Bring the database behind ``engine`` to the newest revision.

    Raises:
        sqlalchemy.exc.SQLAlchemyError, OSError: the database cannot be reached or a
            revision fails (its transaction is rolled back).
    """
    lock = _LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, engine.connect() as conn:
        if dialect == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
            await conn.commit()
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            if dialect == "postgresql":
                await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                   {"k": MIGRATE_LOCK_KEY})
                await conn.commit()


async def current(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None before the first)."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision())


def _upgrade(connection: sa.Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
