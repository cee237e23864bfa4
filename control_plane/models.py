"""Shapes of the control plane's records and request bodies.

Records (:class:`Node`, :class:`Ack`, :class:`Purge`) are frozen dataclasses read from the
store; ``to_json()`` gives the API's JSON shape. Times are stored as epoch seconds (float)
and rendered as RFC 3339 UTC strings (``2024-05-01T12:00:00.123Z``).
Request bodies are pydantic models that reject unknown fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

Tier = Literal["edge", "mid", "origin", "router"]
PurgeType = Literal["url", "prefix", "host", "tag", "service", "all"]
AckState = Literal["pending", "acked", "failed"]

# Fan-out order: the mid tier first, so that an edge cannot refill from a mid-tier node
# that still holds the old object. Origins and routers cache nothing and are not purged.
PURGED_TIERS: tuple[Tier, ...] = ("mid", "edge")

NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (RFC 3339, UTC); ``None`` stays ``None``."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def is_hostname(value: str) -> bool:
    """True for an RFC 1123 host name or dotted IPv4 address (one trailing dot allowed)."""
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    return all(_LABEL.match(label) for label in name.lower().split("."))


def is_http_url(value: str) -> bool:
    """True for an absolute ``http``/``https`` URL with a host (RFC 3986), no whitespace."""
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def check_target(kind: PurgeType, value: str | None) -> str | None:
    """Validate a purge target; returns the value to store.

    ``url``/``prefix``: an absolute http(s) URL; ``host``: a host name (lower-cased);
    ``tag``: a surrogate key without whitespace; ``all``: no value.

    Raises:
        ValueError: with a message naming what is wrong with ``value``.
    """
    if kind == "all":
        if value not in (None, ""):
            raise ValueError("must be omitted for type 'all'")
        return None
    if value is None or value == "":
        raise ValueError(f"is required for type {kind!r}")
    if kind in ("url", "prefix"):
        if not is_http_url(value):
            raise ValueError(f"must be an absolute http(s) URL for type {kind!r}: {value!r}")
        return value
    if kind == "host":
        if not is_hostname(value):
            raise ValueError(f"must be a host name for type 'host': {value!r}")
        return value.lower().rstrip(".")
    if kind == "service":
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", value):
            raise ValueError(f"must be a service name for type 'service': {value!r}")
        return value
    # Surrogate keys travel space-separated in Surrogate-Key headers, so no whitespace.
    if any(ch.isspace() or ord(ch) < 32 for ch in value) or len(value) > 1024:
        raise ValueError(f"must be a tag without whitespace (at most 1024 chars): {value!r}")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Role = Literal["admin", "purger", "reader"]


class KeyIn(_Body):
    """Body of ``POST /v1/keys``."""

    name: StrictStr = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
    role: Role
    services: list[Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]] | None = (
        Field(None, min_length=1, max_length=100))
    """Limit the key to these services: it may read, change and purge only them."""


class HeartbeatIn(_Body):
    """Body of ``POST /v1/nodes/{name}/heartbeat`` (sent by the nodes every second or so)."""

    tier: Tier
    host: StrictStr = Field(min_length=1, max_length=253)
    port: StrictInt = Field(ge=1, le=65535)
    admin_url: StrictStr = Field(min_length=1, max_length=2048)
    purge_seq: StrictInt | None = Field(default=None, ge=0)
    services: dict[StrictStr, StrictInt] | None = Field(default=None, max_length=10_000)
    """``{service: version}`` the node runs now (issue 20); None: a node without
    services (it serves one implicit site)."""


class PrewarmIn(_Body):
    """Body of ``POST /v1/prewarm``: ``urls`` or ``sitemap`` (one of them)."""

    urls: list[StrictStr] | None = Field(default=None, min_length=1, max_length=1000)
    sitemap: StrictStr | None = Field(default=None, max_length=2048)
    tiers: list[Literal["mid", "edge"]] = Field(default=["mid", "edge"], min_length=1)


class AnnounceIn(_Body):
    """Body of ``POST /v1/announce``: URLs the origin created or changed."""

    urls: list[StrictStr] = Field(min_length=1, max_length=1000)
    tiers: list[Literal["mid", "edge"]] = Field(default=["mid", "edge"], min_length=1)


class FailoverIn(_Body):
    """Body of ``PUT /v1/origins/failover``."""

    forced: StrictBool
    reason: StrictStr | None = Field(default=None, max_length=500)
    service: StrictStr | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """Force (or lift) failover for this service only; None: for every service."""


class NodeIn(_Body):
    """Body of ``PUT /v1/nodes/{name}``."""

    tier: Tier
    host: StrictStr = Field(min_length=1, max_length=253)
    port: StrictInt = Field(ge=1, le=65535)
    admin_url: StrictStr = Field(min_length=1, max_length=2048)


class PurgeIn(_Body):
    """Body of ``POST /v1/purges``; ``wait=False`` answers 202 before the fan-out ends."""

    type: PurgeType
    value: StrictStr | None = Field(default=None, max_length=8192)
    soft: StrictBool = False
    wait: StrictBool = True


@dataclass(frozen=True, slots=True)
class Node:
    """A registered node; ``registered_at`` is epoch seconds of the last registration."""

    name: str
    tier: Tier
    host: str
    port: int
    admin_url: str
    registered_at: float
    last_seen: float | None = None
    purge_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tier": self.tier,
            "host": self.host,
            "port": self.port,
            "admin_url": self.admin_url,
            "registered_at": rfc3339(self.registered_at),
            "last_seen": rfc3339(self.last_seen),
            "purge_seq": self.purge_seq,
        }


@dataclass(frozen=True, slots=True)
class Ack:
    """One node's progress on one purge. ``admin_url`` is the node's current admin base
    URL (``None`` when the node has left the registry)."""

    node: str
    tier: Tier
    state: AckState
    purged: int | None
    acked_at: float | None
    error: str | None
    attempts: int
    admin_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "state": self.state,
            "purged": self.purged,
            "acked_at": rfc3339(self.acked_at),
            "error": self.error,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class Purge:
    """A purge and its per-node acknowledgements, in fan-out order (mid tier, then edges,
    each by name). ``seq`` increases monotonically across restarts."""

    id: str
    seq: int
    type: PurgeType
    value: str | None
    soft: bool
    created_at: float
    completed_at: float | None
    acks: tuple[Ack, ...]

    @property
    def state(self) -> Literal["pending", "complete", "partial"]:
        """``complete`` once every node acked; ``partial`` while any node has failed;
        else ``pending`` (the fan-out is still running)."""
        if self.completed_at is not None:
            return "complete"
        if any(a.state == "failed" for a in self.acks):
            return "partial"
        return "pending"

    def message(self) -> dict[str, Any]:
        """The JSON body POSTed to each node's ``{admin_url}/purge``."""
        return {
            "id": self.id,
            "seq": self.seq,
            "type": self.type,
            "value": self.value,
            "soft": self.soft,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "type": self.type,
            "value": self.value,
            "soft": self.soft,
            "created_at": rfc3339(self.created_at),
            "completed_at": rfc3339(self.completed_at),
            "state": self.state,
            "nodes": {a.node: a.to_json() for a in self.acks},
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: only a salted SHA-256 of its secret part is kept."""

    id: str
    name: str
    role: Role
    salt: bytes
    hash: bytes
    created_at: float
    revoked_at: float | None
    services: tuple[str, ...] | None = None
    """The services this key is limited to (issue 20); None: every service."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "services": list(self.services) if self.services is not None else None,
            "created_at": rfc3339(self.created_at),
            "revoked_at": rfc3339(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """A rate-limit policy (the fields of
    :class:`cdn_core.node.policy.ratelimit_policy.RateLimitPolicy`) with its id and times."""

    id: str
    policy: dict[str, Any]
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.policy,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }
