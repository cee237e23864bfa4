"""Tables of services and their versions (issue 20), mixed into
:class:`control_plane.store.Store`.

A version is immutable once written: ``(service, version)`` with its JSON document.
A service row says which version is active and which was active before it (what
``rollback`` returns to). ``node_services`` holds what each node last reported running,
from its heartbeat; activation progress is read from it. Every activation, rollback and
deletion bumps the setting :data:`SERVICES_GENERATION`, which heartbeats carry, so nodes
and the router know when to fetch the active set again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from control_plane.db import Database
from control_plane.store_admin import bump_setting

SERVICES_GENERATION = "services_generation"


@dataclass(frozen=True)
class ServiceRow:
    name: str
    active_version: int | None
    previous_version: int | None
    latest_version: int
    created_at: float
    activated_at: float | None
    deleted_at: float | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "active_version": self.active_version,
                "previous_version": self.previous_version,
                "latest_version": self.latest_version, "created_at": self.created_at,
                "activated_at": self.activated_at, "deleted": self.deleted_at is not None}


@dataclass(frozen=True)
class VersionRow:
    service: str
    version: int
    document: dict[str, Any]
    comment: str
    created_at: float

    def to_json(self, with_document: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service, "version": self.version,
                               "comment": self.comment, "created_at": self.created_at}
        if with_document:
            out["document"] = self.document
        return out


def _service(row: Mapping[str, Any]) -> ServiceRow:
    return ServiceRow(row["name"], row["active_version"], row["previous_version"],
                      row["latest_version"] or 0, row["created_at"], row["activated_at"],
                      row["deleted_at"])


def _version(row: Mapping[str, Any]) -> VersionRow:
    return VersionRow(row["service"], row["version"], json.loads(row["document"]),
                      row["comment"], row["created_at"])


_SELECT_SERVICE = (
    "SELECT s.*, (SELECT MAX(version) FROM service_versions v WHERE v.service = s.name)"
    " AS latest_version FROM services s"
)


class ServiceTables(Database):
    async def add_version(self, name: str, document: dict[str, Any], comment: str,
                          now: float) -> VersionRow:
        """Store the next version of ``name`` (1 for a new service; a deleted service
        comes back with its version numbers continuing)."""
        async with self._tx() as db:
            await db.run(
                "INSERT INTO services (name, created_at) VALUES (:name, :now)"
                " ON CONFLICT (name) DO UPDATE SET deleted_at = NULL", name=name, now=now)
            row = await db.one(
                "SELECT COALESCE(MAX(version), 0) + 1 AS next FROM service_versions"
                " WHERE service = :name", name=name)
            version = int(row["next"]) if row else 1
            await db.run(
                "INSERT INTO service_versions (service, version, document, comment, created_at)"
                " VALUES (:name, :version, :document, :comment, :now)",
                name=name, version=version, document=json.dumps(document, sort_keys=True),
                comment=comment, now=now)
        return VersionRow(name, version, document, comment, now)

    async def get_service(self, name: str) -> ServiceRow | None:
        async with self._read() as db:
            row = await db.one(f"{_SELECT_SERVICE} WHERE s.name = :name", name=name)
        return _service(row) if row else None

    async def list_services(self) -> list[ServiceRow]:
        """Every service not deleted, by name."""
        async with self._read() as db:
            rows = await db.all(f"{_SELECT_SERVICE} WHERE s.deleted_at IS NULL ORDER BY s.name")
        return [_service(r) for r in rows]

    async def get_version(self, name: str, version: int) -> VersionRow | None:
        async with self._read() as db:
            row = await db.one(
                "SELECT * FROM service_versions WHERE service = :name AND version = :version",
                name=name, version=version)
        return _version(row) if row else None

    async def list_versions(self, name: str) -> list[VersionRow]:
        async with self._read() as db:
            rows = await db.all(
                "SELECT * FROM service_versions WHERE service = :name ORDER BY version",
                name=name)
        return [_version(r) for r in rows]

    async def activate(self, name: str, version: int, now: float) -> ServiceRow:
        """Make ``version`` the active one (the one before becomes ``previous_version``,
        unless it is the same); bumps the generation."""
        async with self._tx() as db:
            await db.run(
                "UPDATE services SET previous_version = CASE WHEN active_version = :version"
                " THEN previous_version ELSE active_version END, active_version = :version,"
                " activated_at = :now WHERE name = :name", version=version, now=now, name=name)
            await bump_setting(db, SERVICES_GENERATION)
        row = await self.get_service(name)
        assert row is not None
        return row

    async def delete_service(self, name: str, now: float) -> bool:
        """Stop serving ``name`` everywhere (versions are kept); False when unknown."""
        async with self._tx() as db:
            changed = await db.run(
                "UPDATE services SET deleted_at = :now, active_version = NULL,"
                " previous_version = NULL WHERE name = :name AND deleted_at IS NULL",
                now=now, name=name)
            if changed == 0:
                return False
            await bump_setting(db, SERVICES_GENERATION)
        return True

    async def active_documents(self) -> list[VersionRow]:
        """The active version of every service, by name."""
        async with self._read() as db:
            rows = await db.all(
                "SELECT v.* FROM services s JOIN service_versions v ON v.service = s.name"
                " AND v.version = s.active_version WHERE s.deleted_at IS NULL"
                " ORDER BY s.name")
        return [_version(r) for r in rows]

    async def taken_domains(self, except_service: str) -> dict[str, str]:
        """``{domain: service}`` over the active and latest versions of every other
        service not deleted (a domain belongs to one service)."""
        out: dict[str, str] = {}
        async with self._read() as db:
            rows = await db.all(
                "SELECT v.service, v.document FROM services s JOIN service_versions v"
                " ON v.service = s.name WHERE s.deleted_at IS NULL AND s.name != :name AND"
                " (v.version = s.active_version OR v.version = (SELECT MAX(version) FROM"
                " service_versions w WHERE w.service = s.name))", name=except_service)
        for row in rows:
            for domain in json.loads(row["document"]).get("domains", []):
                out[domain] = row["service"]
        return out

    async def report_services(self, node: str, running: dict[str, int]) -> None:
        """What ``node`` runs now (from its heartbeat): replaces its previous report."""
        async with self._tx() as db:
            await db.run("DELETE FROM node_services WHERE node = :node", node=node)
            await db.run_many(
                "INSERT INTO node_services (node, service, version)"
                " VALUES (:node, :service, :version)",
                [{"node": node, "service": s, "version": v} for s, v in running.items()])

    async def running_versions(self, service: str) -> dict[str, int]:
        """``{node: version}`` of the nodes that reported running ``service``."""
        async with self._read() as db:
            rows = await db.all("SELECT node, version FROM node_services WHERE service = :service",
                                service=service)
        return {r["node"]: r["version"] for r in rows}
