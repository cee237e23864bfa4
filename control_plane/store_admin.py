"""Tables of the control plane beyond nodes and purges: API keys (hashed), rate-limit
policies, and small named settings (the failover override, the policy version).

Mixed into :class:`control_plane.store.Store`; uses its transaction helpers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from control_plane.db import Database, Tx
from control_plane.models import ApiKey, StoredPolicy

RATELIMIT_VERSION = "ratelimit_version"
Row = Mapping[str, Any]


def _key(row: Row) -> ApiKey:
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


def _policy(row: Row) -> StoredPolicy:
    return StoredPolicy(
        id=row["id"],
        policy=json.loads(row["policy"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def bump_setting(db: Tx, name: str) -> int:
    """Add one to the integer setting ``name`` (1 when unset), inside the caller's
    transaction, and return the new value: the version numbers heartbeats carry, and
    purge seqs."""
    row = await db.one(
        "INSERT INTO settings (name, value) VALUES (:name, '1') ON CONFLICT (name)"
        " DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)"
        " RETURNING value",
        name=name,
    )
    assert row is not None
    return int(row["value"])


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
            await db.run(
                "INSERT INTO api_keys (id, name, role, salt, hash, created_at, services)"
                " VALUES (:id, :name, :role, :salt, :hash, :now, :scope)",
                id=key_id, name=name, role=role, salt=salt, hash=digest, now=now, scope=scope,
            )
        return ApiKey(key_id, name, role, salt, digest, now, None,  # type: ignore[arg-type]
                      tuple(sorted(services)) if services is not None else None)

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        async with self._read() as db:
            return [_key(r) for r in await db.all("SELECT * FROM api_keys ORDER BY created_at, id")]

    async def revoke_key(self, key_id: str, now: float) -> ApiKey | None:
        """Mark a key revoked (idempotent); None when there is no such key."""
        async with self._tx() as db:
            await db.run(
                "UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL",
                now=now, id=key_id,
            )
            row = await db.one("SELECT * FROM api_keys WHERE id = :id", id=key_id)
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
                    await db.run(
                        "INSERT INTO ratelimits (id, name, policy, created_at, updated_at)"
                        " VALUES (:id, :name, :policy, :now, :now)",
                        id=policy_id, name=policy["name"], policy=text, now=now,
                    )
                else:
                    changed = await db.run(
                        "UPDATE ratelimits SET name = :name, policy = :policy, updated_at = :now"
                        " WHERE id = :id",
                        name=policy["name"], policy=text, now=now, id=policy_id,
                    )
                    if changed == 0:
                        raise KeyError(policy_id)
                await bump_setting(db, RATELIMIT_VERSION)
        except sa.exc.IntegrityError as exc:
            raise NameTaken(policy["name"]) from exc
        found = await self.get_policy(policy_id)
        assert found is not None
        return found

    async def get_policy(self, policy_id: str) -> StoredPolicy | None:
        async with self._read() as db:
            row = await db.one("SELECT * FROM ratelimits WHERE id = :id", id=policy_id)
        return _policy(row) if row else None

    async def list_policies(self) -> list[StoredPolicy]:
        async with self._read() as db:
            return [_policy(r) for r in await db.all("SELECT * FROM ratelimits ORDER BY name")]

    async def delete_policy(self, policy_id: str) -> bool:
        async with self._tx() as db:
            found = await db.run("DELETE FROM ratelimits WHERE id = :id", id=policy_id) > 0
            if found:
                await bump_setting(db, RATELIMIT_VERSION)
        return found

    # -- settings -------------------------------------------------------------------------

    async def get_setting(self, name: str) -> Any:
        """The JSON value of setting ``name``, or None."""
        async with self._read() as db:
            row = await db.one("SELECT value FROM settings WHERE name = :name", name=name)
        return json.loads(row["value"]) if row else None

    async def set_setting(self, name: str, value: Any) -> None:
        async with self._tx() as db:
            await db.run(
                "INSERT INTO settings (name, value) VALUES (:name, :value) ON CONFLICT (name)"
                " DO UPDATE SET value = excluded.value",
                name=name, value=json.dumps(value),
            )
