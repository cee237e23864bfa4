"""Configuration of the control plane (``configs/control_plane.yaml``).

Loaded with :func:`cdn_core.config.load_config`; unknown keys are errors. Flags override
the file, and environment variables ``CDN_CONTROL_PLANE__<FIELD>`` (``__`` between
nested fields) override it too, e.g. ``CDN_CONTROL_PLANE__PURGE__NODE_TIMEOUT=5``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from cdn_core.config import StrictModel
from control_plane.models import NODE_NAME, is_hostname, is_http_url

ENV_PREFIX = "CDN_CONTROL_PLANE"


class PurgeConfig(StrictModel):
    """Purge fan-out settings (all in seconds)."""

    node_timeout: float = Field(default=2.0, gt=0, le=60)
    """How long one node may take to acknowledge a purge before it counts as failed."""
    retry_interval: float = Field(default=3.0, gt=0, le=3600)
    """Pause between passes of the retry loop that re-sends unacknowledged purges."""


class AuthConfig(StrictModel):
    """Where the bootstrap credentials come from (see :mod:`control_plane.auth`)."""

    admin_key_file: str | None = None
    """File whose first line is an admin API key (``cdnctl up`` writes ``run/admin.key``)."""
    admin_key_env: str | None = "CDN_ADMIN_KEY"
    """Environment variable that may hold an admin API key (ignored when unset/empty)."""
    reader_key_file: str | None = None
    """File whose first line is a read-only API key (``cdnctl up`` gives it to the router)."""
    node_token: SecretStr | None = None
    """The shared node token (prefer ``node_token_file``: flags show in ``ps``)."""
    node_token_file: str | None = None
    """File whose first line is the node token; wins over ``node_token``."""


class ApiLimitConfig(StrictModel):
    """Limits the API puts on its own clients."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Largest request body accepted (413 beyond it)."""
    rate: float = Field(default=50.0, gt=0, le=1_000_000)
    """Requests per second per API key (or per client address without a valid key);
    the node token is not limited."""
    burst: int = Field(default=200, ge=1, le=1_000_000)
    """Requests a key may make at once before ``rate`` applies."""


class PushConfig(StrictModel):
    """Prewarm fan-out settings."""

    node_timeout: float = Field(default=30.0, gt=0, le=600)
    """Seconds one node may take to fetch a whole prewarm batch."""
    sitemap_timeout: float = Field(default=10.0, gt=0, le=120)
    """Seconds to fetch a sitemap."""
    max_urls: int = Field(default=1000, ge=1, le=100_000)
    """Most URLs one prewarm (or one sitemap) may name."""
    hosts: list[str] = Field(default=["www.example.test"], min_length=1)
    """Hosts this CDN serves (exact names, or ``*.example.test`` for any name under
    it): the only ones prewarm, announce and sitemaps may name. Nothing else is ever
    contacted, whatever it resolves to; an IP address only when listed as such."""
    ports: list[int] = Field(default=[80, 443, 8080, 8443], min_length=1)
    """Ports those URLs may carry (the public listeners; never an admin port)."""

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        out = []
        for host in value:
            name = host.strip().lower().rstrip(".")
            if not is_hostname(name.removeprefix("*.")):
                raise ValueError(f"not a host name, IPv4 address or *.wildcard: {host!r}")
            out.append(name)
        return out


class SeedNode(StrictModel):
    """A node registered at startup (the same fields as ``PUT /v1/nodes/{name}``)."""

    tier: Literal["edge", "mid", "origin", "router"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    admin_url: str = Field(min_length=1, max_length=2048)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not is_hostname(value):
            raise ValueError(f"not a host name or IPv4 address: {value!r}")
        return value

    @field_validator("admin_url")
    @classmethod
    def _admin_url(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError(f"must be an absolute http(s) URL: {value!r}")
        return value


class FailoverConfig(StrictModel):
    """Automatic origin failover (:mod:`control_plane.origin_watch`)."""

    auto: bool = True
    """Force failover while the origin is down, lift it when the origin is back."""
    interval: float = Field(default=1.0, gt=0, le=60)
    """Seconds between probes of the origins and the mid tiers."""
    fall: int = Field(default=3, ge=1, le=100)
    """Failing rounds in a row that make the origin down."""
    rise: int = Field(default=3, ge=1, le=100)
    """Healthy rounds in a row that make it up again."""


class ClusterConfig(StrictModel):
    """Several replicas on one PostgreSQL database: each announces itself, and one of
    them, the leader, holds a lease in the database and runs the work that must happen
    once (the origin watch, purge retries, stats sampling)."""

    url: str | None = None
    """The base URL other replicas and ``GET /v1/cluster`` show for this replica
    (default ``http://<host>:<port>``)."""
    lease_ttl: float = Field(default=3.0, gt=0, le=300)
    """Seconds a leader's lease lasts without renewal: a dead leader is replaced within
    ``lease_ttl + interval`` seconds."""
    interval: float = Field(default=1.0, gt=0, le=60)
    """Seconds between a replica's lease attempts, heartbeats and API-key reloads."""
    forget_after: float = Field(default=600.0, gt=0)
    """Seconds after which a silent replica is dropped from ``GET /v1/cluster``."""

    @model_validator(mode="after")
    def _renewed_in_time(self) -> ClusterConfig:
        if self.interval >= self.lease_ttl:
            raise ValueError(f"interval ({self.interval} s) must be shorter than lease_ttl"
                             f" ({self.lease_ttl} s), or the leader's lease lapses between"
                             " renewals")
        return self


class ControlPlaneConfig(StrictModel):
    """Top level of ``configs/control_plane.yaml``."""

    name: str = Field("control", description="name in logs and metrics")
    host: str = Field("127.0.0.1", description="address of the REST API")
    port: int = Field(default=9000, ge=0, le=65535, description="port of the REST API")
    db: str = Field(default="run/control.db", min_length=1)
    """The database: a SQLite file (created if missing; the one-host default) or a URL,
    ``sqlite:///path`` or ``postgresql://user:password@host:5432/db`` (several replicas
    share one PostgreSQL database). ``$CDN_DB`` overrides the file; ``--db`` overrides
    both. The schema is migrated on start."""
    status_timeout: float = Field(default=1.0, gt=0, le=60)
    """Seconds to wait for each node's admin ``/status`` and ``/healthz`` in ``/v1/status``."""
    heartbeat_timeout: float = Field(default=10.0, gt=0, le=3600)
    """A node whose last heartbeat is older than this many seconds shows ``alive: false``."""
    purge: PurgeConfig = PurgeConfig()
    auth: AuthConfig = AuthConfig()
    api: ApiLimitConfig = ApiLimitConfig()
    push: PushConfig = PushConfig()
    failover: FailoverConfig = FailoverConfig()
    cluster: ClusterConfig = ClusterConfig()
    nodes: dict[str, SeedNode] = Field(default_factory=dict)
    """Nodes upserted into the registry at startup, keyed by name (optional; nodes can
    also register themselves through the API)."""

    @field_validator("nodes")
    @classmethod
    def _names(cls, value: dict[str, SeedNode]) -> dict[str, SeedNode]:
        for name in value:
            if not NODE_NAME.match(name):
                raise ValueError(f"bad node name {name!r}: use letters, digits, '.', '_', '-'")
        return value
