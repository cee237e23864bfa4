"""Tables of the control plane beyond nodes and purges: API keys (hashed), rate-limit
policies, and small named settings (the failover override, the policy version).

Mixed into :class:`control_plane.store.Store`; uses its transaction helpers.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from control_plane.db import Database
from control_plane.models import ApiKey, StoredPolicy

ADMIN_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'purger', 'reader')),
    salt       BLOB NOT NULL,
    hash       BLOB NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS ratelimits (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    policy     TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

RATELIMIT_VERSION = "ratelimit_version"


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        salt=bytes(row["salt"]),
        hash=bytes(row["hash"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        services=tuple(json.loads(row["services"])) if row["services"] else None,
    )


def _policy(row: sqlite3.Row) -> StoredPolicy:
    return StoredPolicy(
        id=row["id"],
        policy=json.loads(row["policy"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def bump_setting(db: Any, name: str) -> None:
    """Add one to the integer setting ``name`` (1 when unset), inside the caller's
    transaction: the version numbers heartbeats carry."""
    await db.execute(
        "INSERT INTO settings (name, value) VALUES (?, '1') ON CONFLICT (name)"
        " DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (name,),
    )


class NameTaken(Exception):
    """A rate-limit policy of that name exists already."""


class AdminTables(Database):
    # -- API keys ------------------------------------------------------------------------

    async def add_key(
        self, key_id: str, *, name: str, role: str, salt: bytes, digest: bytes, now: float,
        services: list[str] | None = None,
    ) -> ApiKey:
        """Store a new key; ``services`` limits it to those services (issue 20)."""
        scope = json.dumps(sorted(services)) if services is not None else None
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO api_keys (id, name, role, salt, hash, created_at, services)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, name, role, salt, digest, now, scope),
            )
        return ApiKey(key_id, name, role, salt, digest, now, None,  # type: ignore[arg-type]
                      tuple(sorted(services)) if services is not None else None)

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        async with (
            self._read() as db,
            db.execute("SELECT * FROM api_keys ORDER BY created_at, id") as cur,
        ):
            return [_key(r) for r in await cur.fetchall()]

    async def revoke_key(self, key_id: str, now: float) -> ApiKey | None:
        """Mark a key revoked (idempotent); None when there is no such key."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, key_id),
            )
            async with db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)) as cur:
                row = await cur.fetchone()
        return _key(row) if row else None

    # -- rate-limit policies --------------------------------------------------------------

    async def put_policy(
        self, policy: dict[str, Any], now: float, policy_id: str | None = None
    ) -> StoredPolicy:
        """Create a policy (``policy_id`` None) or replace one; bumps the policy version.

        Raises:
            NameTaken: another policy has this name.
            KeyError: ``policy_id`` names no policy.
        """
        text = json.dumps(policy, sort_keys=True)
        try:
            async with self._tx() as db:
                if policy_id is None:
                    policy_id = str(uuid.uuid4())
                    await db.execute(
                        "INSERT INTO ratelimits (id, name, policy, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (policy_id, policy["name"], text, now, now),
                    )
                else:
                    cur = await db.execute(
                        "UPDATE ratelimits SET name = ?, policy = ?, updated_at = ? WHERE id = ?",
                        (policy["name"], text, now, policy_id),
                    )
                    if cur.rowcount == 0:
                        raise KeyError(policy_id)
                await bump_setting(db, RATELIMIT_VERSION)
        except sqlite3.IntegrityError as exc:
            raise NameTaken(policy["name"]) from exc
        found = await self.get_policy(policy_id)
        assert found is not None
        return found

    async def get_policy(self, policy_id: str) -> StoredPolicy | None:
        async with (
            self._read() as db,
            db.execute("SELECT * FROM ratelimits WHERE id = ?", (policy_id,)) as cur,
        ):
            row = await cur.fetchone()
        return _policy(row) if row else None

    async def list_policies(self) -> list[StoredPolicy]:
        async with (
            self._read() as db,
            db.execute("SELECT * FROM ratelimits ORDER BY name") as cur,
        ):
            return [_policy(r) for r in await cur.fetchall()]

    async def delete_policy(self, policy_id: str) -> bool:
        async with self._tx() as db:
            cur = await db.execute("DELETE FROM ratelimits WHERE id = ?", (policy_id,))
            found = cur.rowcount > 0
            if found:
                await bump_setting(db, RATELIMIT_VERSION)
        return found

    # -- settings -------------------------------------------------------------------------

    async def get_setting(self, name: str) -> Any:
        """The JSON value of setting ``name``, or None."""
        async with (
            self._read() as db,
            db.execute("SELECT value FROM settings WHERE name = ?", (name,)) as cur,
        ):
            row = await cur.fetchone()
        return json.loads(row["value"]) if row else None

    async def set_setting(self, name: str, value: Any) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name)"
                " DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )
