"""``GET /v1/openapi.json``: the API described as OpenAPI 3.1 (public).

Summaries and request bodies come from :data:`OPERATIONS`; who may call each operation
comes from the routes' declared roles, and body schemas from the pydantic models the
handlers validate with, so the document follows the code. A test checks that every
route is described and every description is a route.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy
from cdn_core.services.model import ServiceSpec
from control_plane.api import body_of
from control_plane.auth import ACCESS, PUBLIC, add_route, describe_roles
from control_plane.models import (
    AnnounceIn,
    FailoverIn,
    HeartbeatIn,
    KeyIn,
    NodeIn,
    PrewarmIn,
    PurgeIn,
)
from control_plane.routes.services import ActivateIn, VersionIn
from control_plane.routes.signing import SigningKeyIn

OPERATIONS: dict[tuple[str, str], tuple[str, type[BaseModel] | None]] = {
    ("GET", "/v1/healthz"): ("Liveness of the control plane", None),
    ("GET", "/v1/readyz"): ("Readiness: the database answered this replica's last tick", None),
    ("GET", "/v1/cluster"): ("Control-plane replicas, the leader and its lease", None),
    ("GET", "/metrics"): ("Prometheus metrics", None),
    ("GET", "/v1/openapi.json"): ("This document", None),
    ("GET", "/v1/status"): ("Health and cache counters of every node", None),
    ("GET", "/v1/stats/history"): ("The last hour of rates per tier (?since=)", None),
    ("POST", "/v1/keys"): ("Create an API key (its text is shown once)", KeyIn),
    ("GET", "/v1/keys"): ("List API keys (without their text)", None),
    ("DELETE", "/v1/keys/{id}"): ("Revoke an API key", None),
    ("GET", "/v1/nodes"): ("List registered nodes (?tier=)", None),
    ("PUT", "/v1/nodes/{name}"): ("Register or update a node", NodeIn),
    ("GET", "/v1/nodes/{name}"): ("One node", None),
    ("DELETE", "/v1/nodes/{name}"): ("Remove a node from the registry", None),
    ("POST", "/v1/nodes/{name}/heartbeat"): ("A node's heartbeat (node token)", HeartbeatIn),
    ("POST", "/v1/purges"): ("Purge by URL, prefix, host, tag or everything", PurgeIn),
    ("GET", "/v1/purges"): ("Newest purges (?limit=), or those after a seq (?after_seq=)", None),
    ("GET", "/v1/purges/{id}"): ("One purge with every node's acknowledgement", None),
    ("POST", "/v1/prewarm"): ("Make tiers fetch and store URLs or a sitemap", PrewarmIn),
    ("POST", "/v1/announce"): ("Origin announces changed URLs: purge, then prewarm", AnnounceIn),
    ("GET", "/v1/ratelimits"): ("Rate-limit policies and their version", None),
    ("POST", "/v1/ratelimits"): ("Create a rate-limit policy", RateLimitPolicy),
    ("GET", "/v1/ratelimits/{id}"): ("One rate-limit policy", None),
    ("PUT", "/v1/ratelimits/{id}"): ("Replace a rate-limit policy", RateLimitPolicy),
    ("DELETE", "/v1/ratelimits/{id}"): ("Delete a rate-limit policy", None),
    ("GET", "/v1/signing-keys"): ("Signed-URL keys and their version (node token)", None),
    ("PUT", "/v1/signing-keys/{id}"): ("Add or replace a signed-URL key", SigningKeyIn),
    ("DELETE", "/v1/signing-keys/{id}"): ("Retire a signed-URL key", None),
    ("GET", "/v1/origins"): ("Origin health and failover state", None),
    ("PUT", "/v1/origins/failover"): (
        "Force (or stop forcing) serving from the mid tier",
        FailoverIn,
    ),
    ("GET", "/v1/services"): ("Services with their active version and progress", None),
    ("POST", "/v1/services/validate"): ("Check a service document; stores nothing",
                                         ServiceSpec),
    ("GET", "/v1/services/active"): ("The active version of every service (nodes, router)",
                                     None),
    ("GET", "/v1/services/{name}"): ("One service, its active document and progress", None),
    ("DELETE", "/v1/services/{name}"): ("Stop serving a service everywhere", None),
    ("GET", "/v1/services/{name}/versions"): ("A service's versions", None),
    ("POST", "/v1/services/{name}/versions"): ("Add a version (the diff is returned)",
                                               VersionIn),
    ("GET", "/v1/services/{name}/versions/{version}"): ("One version and its document", None),
    ("GET", "/v1/services/{name}/diff"): ("Changes between versions ?from=A&to=B", None),
    ("POST", "/v1/services/{name}/activate"): ("Activate a version on every node",
                                               ActivateIn),
    ("POST", "/v1/services/{name}/rollback"): ("Activate the version active before", None),
}

_ERROR = {
    "description": "error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}


def routes_of(app: web.Application) -> set[tuple[str, str]]:
    """``(method, path template)`` of every route with declared access."""
    out = set()
    for route in app[ACCESS]:
        resource = route.resource
        if resource is not None and route.method != "HEAD":
            out.add((route.method, resource.canonical))
    return out


def document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route, roles in app[ACCESS].items():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        key = (route.method, resource.canonical)
        summary, model = OPERATIONS.get(key, ("(undocumented)", None))
        op: dict[str, Any] = {
            "summary": summary,
            "responses": {"default": _ERROR},
        }
        if roles == PUBLIC:
            op["security"] = []
        else:
            op["description"] = f"Needs {describe_roles(roles)}."
            op["x-roles"] = sorted(roles)
            op["responses"]["401"] = _ERROR
            op["responses"]["403"] = _ERROR
        if model is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": model.model_json_schema()}},
            }
            op["responses"]["400"] = _ERROR
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in ("id", "name")
            if "{" + p + "}" in resource.canonical
        ]
        if params:
            op["parameters"] = params
        paths.setdefault(resource.canonical, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "tiered-cdn control plane", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


async def openapi(request: web.Request) -> web.Response:
    return body_of(document(request.app))


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/v1/openapi.json", openapi, PUBLIC)
