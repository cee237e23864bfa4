"""Services and their versions (issue 20): ``/v1/services``.

Every change makes a new immutable version; a version serves only once activated, and a
node switches a service's whole version at once. Documents are
:class:`cdn_core.services.model.ServiceSpec`; every error names its field path.

- ``GET /v1/services`` -> ``{"services": [service, ...]}`` (any key).
- ``POST /v1/services/validate`` body: a document -> 200 ``{"ok": true, "problems": []}``
  or 400 ``{"error", "problems": [{"path", "message"}]}``; stores nothing.
- ``GET /v1/services/active`` (node token or any key) -> ``{"generation": int,
  "services": [{"name", "version", "document"}]}``: what nodes and the router run.
- ``GET /v1/services/{name}`` -> service with ``active`` (its document) and
  ``progress``; 404 when unknown or deleted.
- ``DELETE /v1/services/{name}`` (admin) -> 204: no node serves it any more (421).
- ``GET /v1/services/{name}/versions`` -> ``{"versions": [...]}`` without documents.
- ``POST /v1/services/{name}/versions`` (admin) body ``{"document": {...}, "comment":
  str}`` -> 201 ``{"version", "diff": [...], "unchanged": false}`` (diff against the
  latest version), 200 with ``"unchanged": true`` and no new version when the document
  equals the latest; 400 with every problem, nothing stored.
- ``GET /v1/services/{name}/versions/{v}`` -> the version with its document.
- ``GET /v1/services/{name}/diff?from=A&to=B`` -> ``{"changes": [{"path", "old", "new"}]}``.
- ``POST /v1/services/{name}/activate`` (admin) body ``{"version": int}`` -> the service
  with ``progress``; 409 when its domains are taken by another active service.
- ``POST /v1/services/{name}/rollback`` (admin) -> activates the version active before.

``progress`` is ``{"version", "state": "complete" | "pending", "done", "total",
"pending_nodes": [...]}`` over the registered edges and mid tiers, from what each
reports running in its heartbeat, like a purge's completion.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from pydantic import Field, StrictInt, StrictStr

from cdn_core.config import StrictModel
from cdn_core.services.diff import MISSING, diff
from cdn_core.services.model import NAME
from cdn_core.services.validate import Problem, validate
from control_plane import scope
from control_plane.api import CLOCK, STORE, ApiError, body_of, query_int, read_body
from control_plane.auth import ADMIN_ONLY, NODE, READ, add_route
from control_plane.store import Store
from control_plane.store_services import SERVICES_GENERATION, ServiceRow

RESERVED = frozenset({"active", "validate"})  # path words beside /v1/services/{name}
SERVING_TIERS = ("edge", "mid")
MAX_DOCUMENT_BYTES = 512 * 1024


class VersionIn(StrictModel):
    document: dict[str, Any]
    comment: StrictStr = Field("", max_length=500)


class ActivateIn(StrictModel):
    version: StrictInt = Field(ge=1)


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not re.match(NAME, name) or name in RESERVED:
        raise ApiError(400, f"bad service name {name!r}: lower-case letters, digits and '-', "
                       "1-63 characters, not 'active' or 'validate'")
    scope.require(request, name)
    return name


def _problems(status: int, problems: list[Problem]) -> ApiError:
    return ApiError(status, "; ".join(p.line() for p in problems[:5])
                    + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
                    extra={"problems": [p.as_dict() for p in problems]})


async def _checked(store: Store, name: str | None, document: Any) -> dict[str, Any]:
    """The document validated and normalised (what the user set, domains lower-cased).

    Raises:
        ApiError: 400 with every problem.
    """
    if name is not None and isinstance(document, dict):
        document = {**document, "name": document.get("name", name)}
        if document["name"] != name:
            raise _problems(400, [Problem("name", f"{document['name']!r} differs from the "
                                          f"service in the path ({name!r})")])
    if len(json.dumps(document)) > MAX_DOCUMENT_BYTES:
        raise ApiError(413, f"a service document is at most {MAX_DOCUMENT_BYTES} bytes")
    taken = await store.taken_domains(str(document.get("name", ""))) \
        if isinstance(document, dict) else {}
    spec, problems = validate(document, taken)
    if spec is None:
        raise _problems(400, problems)
    return spec.model_dump(mode="json", exclude_unset=True) | {"domains": spec.domains}


async def _progress(store: Store, service: ServiceRow) -> dict[str, Any] | None:
    if service.active_version is None:
        return None
    running = await store.running_versions(service.name)
    nodes = [n.name for n in await store.list_nodes() if n.tier in SERVING_TIERS]
    pending = sorted(n for n in nodes if running.get(n) != service.active_version)
    return {"version": service.active_version,
            "state": "pending" if pending else "complete",
            "done": len(nodes) - len(pending), "total": len(nodes), "pending_nodes": pending}


async def _service(store: Store, name: str) -> ServiceRow:
    row = await store.get_service(name)
    if row is None or row.deleted_at is not None:
        raise ApiError(404, f"no service named {name!r}")
    return row


async def _service_json(store: Store, row: ServiceRow) -> dict[str, Any]:
    out = row.to_json()
    active = (await store.get_version(row.name, row.active_version)
              if row.active_version else None)
    out["active"] = active.document if active else None
    out["progress"] = await _progress(store, row)
    return out


async def list_services(request: web.Request) -> web.Response:
    store = request.app[STORE]
    out = []
    limited = scope.limited_to(request)
    for row in await store.list_services():
        if limited is not None and row.name not in limited:
            continue
        item = row.to_json()
        latest = await store.get_version(row.name, row.latest_version)
        item["domains"] = latest.document.get("domains", []) if latest else []
        item["progress"] = await _progress(store, row)
        out.append(item)
    return body_of({"services": out})


async def validate_document(request: web.Request) -> web.Response:
    try:
        document = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "body is not valid JSON") from None
    if isinstance(document, dict) and isinstance(document.get("name"), str):
        scope.require(request, document["name"])
    await _checked(request.app[STORE], None, document)
    return body_of({"ok": True, "problems": []})


async def active_services(request: web.Request) -> web.Response:
    if scope.limited_to(request) is not None:
        raise ApiError(403, "the active set of every service is for nodes and unlimited keys")
    store = request.app[STORE]
    return body_of({
        "generation": await store.get_setting(SERVICES_GENERATION) or 0,
        "services": [{"name": v.service, "version": v.version, "document": v.document}
                     for v in await store.active_documents()],
    })


async def get_service(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return body_of(await _service_json(store, await _service(store, _name(request))))


async def delete_service(request: web.Request) -> web.Response:
    name = _name(request)
    if not await request.app[STORE].delete_service(name, request.app[CLOCK].time()):
        raise ApiError(404, f"no service named {name!r}")
    return web.Response(status=204)


async def list_versions(request: web.Request) -> web.Response:
    store = request.app[STORE]
    row = await _service(store, _name(request))
    versions = await store.list_versions(row.name)
    return body_of({"versions": [v.to_json(with_document=False) | {
        "active": v.version == row.active_version} for v in versions]})


async def add_version(request: web.Request) -> web.Response:
    name = _name(request)
    store = request.app[STORE]
    body = await read_body(request, VersionIn)
    document = await _checked(store, name, body.document)
    row = await store.get_service(name)
    latest = (await store.get_version(name, row.latest_version)
              if row is not None and row.deleted_at is None and row.latest_version else None)
    before = latest.document if latest else {}
    changes = diff(before, document)
    if latest is not None and not changes:
        return body_of({"version": latest.version, "unchanged": True, "diff": []})
    version = await store.add_version(name, document, body.comment, request.app[CLOCK].time())
    return body_of({"version": version.version, "unchanged": False,
                    "diff": [_change_json(c) for c in changes]}, status=201)


async def get_version(request: web.Request) -> web.Response:
    store = request.app[STORE]
    row = await _service(store, _name(request))
    number = _version_number(request.match_info["version"])
    version = await store.get_version(row.name, number)
    if version is None:
        raise ApiError(404, f"service {row.name!r} has no version {number}")
    return body_of(version.to_json() | {"active": number == row.active_version})


def _version_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10**9:
        raise ApiError(400, "a version is a positive integer")
    return int(text)


def _change_json(change: Any) -> dict[str, Any]:
    return {"path": change.path,
            "old": None if change.old is MISSING else change.old,
            "new": None if change.new is MISSING else change.new,
            "line": change.line()}


async def diff_versions(request: web.Request) -> web.Response:
    store = request.app[STORE]
    row = await _service(store, _name(request))
    docs = []
    for param in ("from", "to"):
        number = query_int(request, param, 0, 1, 10**9)
        if number == 0:
            raise ApiError(400, f"{param}: a version number is needed")
        version = await store.get_version(row.name, number)
        if version is None:
            raise ApiError(404, f"service {row.name!r} has no version {number}")
        docs.append(version.document)
    return body_of({"changes": [_change_json(c) for c in diff(docs[0], docs[1])]})


async def _activate(request: web.Request, name: str, number: int) -> web.Response:
    store = request.app[STORE]
    row = await _service(store, name)
    version = await store.get_version(name, number)
    if version is None:
        raise ApiError(404, f"service {name!r} has no version {number}")
    # Domains may have been taken since the version was written: check again.
    _, problems = validate(version.document, await store.taken_domains(name))
    if problems:
        raise _problems(409, problems)
    row = await store.activate(name, number, request.app[CLOCK].time())
    return body_of(await _service_json(store, row))


async def activate(request: web.Request) -> web.Response:
    name = _name(request)
    body = await read_body(request, ActivateIn)
    return await _activate(request, name, body.version)


async def rollback(request: web.Request) -> web.Response:
    name = _name(request)
    row = await _service(request.app[STORE], name)
    if row.previous_version is None:
        raise ApiError(409, f"service {name!r} has no earlier active version to roll back to")
    return await _activate(request, name, row.previous_version)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/services", list_services, READ)
    add_route(app, "POST", "/v1/services/validate", validate_document, READ)
    add_route(app, "GET", "/v1/services/active", active_services, READ | {NODE})
    add_route(app, "GET", "/v1/services/{name}", get_service, READ)
    add_route(app, "DELETE", "/v1/services/{name}", delete_service, ADMIN_ONLY)
    add_route(app, "GET", "/v1/services/{name}/versions", list_versions, READ)
    add_route(app, "POST", "/v1/services/{name}/versions", add_version, ADMIN_ONLY)
    add_route(app, "GET", "/v1/services/{name}/versions/{version}", get_version, READ)
    add_route(app, "GET", "/v1/services/{name}/diff", diff_versions, READ)
    add_route(app, "POST", "/v1/services/{name}/activate", activate, ADMIN_ONLY)
    add_route(app, "POST", "/v1/services/{name}/rollback", rollback, ADMIN_ONLY)
