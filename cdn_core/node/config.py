"""Configuration of a caching node (edge or mid tier). ``configs/edge.yaml`` and
``configs/mid_tier.yaml`` hold these fields; command-line flags override them."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from cdn_core.config import StrictModel
from cdn_core.node.accesslog import AccessLogSettings
from cdn_core.node.control_config import ControlSettings, RateLimitSettings
from cdn_core.node.edge_config import SignedUrlSettings, TlsSettings
from cdn_core.node.rtt import RttReportSettings
from cdn_core.optimize.settings import OptimizeSettings


class CacheSettings(StrictModel):
    max_bytes: int = Field(256 * 1024 * 1024, gt=0, description="memory budget, bytes")
    max_object_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="largest object stored, bytes; larger ones stream"
    )
    max_variants: int = Field(16, ge=1, description="variants per cache key (Vary)")
    policy: Literal["lru", "wtinylfu", "s3fifo"] = Field(
        "wtinylfu", description="admission/eviction policy of the memory store"
    )
    disk_path: str | None = Field(
        None, description="directory of the on-disk tier (mid tiers); none: memory only"
    )
    disk_max_bytes: int = Field(
        10 * 1024 * 1024 * 1024, gt=0, description="on-disk tier budget, bytes"
    )
    disk_fsync: bool = Field(
        True, description="fsync each disk write before it counts (off: faster, may lose writes)"
    )
    heuristic_fraction: float = Field(0.1, ge=0, le=1)
    heuristic_max_seconds: float = Field(86_400, ge=0)
    hit_for_miss_seconds: float = Field(
        120, ge=0, description="how long an uncacheable key skips request collapsing"
    )
    targeted_fields: list[str] = Field(
        default_factory=lambda: ["CDN-Cache-Control", "Surrogate-Control"],
        description="RFC 9213 targeted Cache-Control fields this tier obeys, first wins",
    )
    strip_targeted_fields: bool = Field(
        False, description="remove targeted fields from responses (the tier facing clients)"
    )
    share_set_cookie: bool = Field(
        False, description="store Set-Cookie responses the origin marks public or s-maxage"
    )


class UpstreamSettings(StrictModel):
    urls: list[str] = Field(default_factory=list, description="http://host:port of upstreams")
    connect_timeout: float = Field(2.0, gt=0, description="seconds")
    timeout: float = Field(30.0, gt=0, description="seconds for the whole upstream response")
    pool_size: int = Field(64, ge=1, description="connections per upstream")
    fail_threshold: int = Field(1, ge=1, description="consecutive failures that mark it down")
    retry_after: float = Field(2.0, gt=0, description="seconds before a down upstream is tried")
    ca_file: str | None = Field(
        None, description="PEM CA bundle for https upstreams (default: the system's CAs)"
    )
    selection: Literal["rendezvous", "ordered"] = Field(
        "rendezvous",
        description="rendezvous: spread keys over peers (edges -> mid tiers); ordered: the "
        "first healthy upstream in list order (an origin and its replicas)",
    )
    health_path: str | None = Field(
        None, description="path probed on each upstream for active health checks; None: off"
    )
    health_interval: float = Field(2.0, gt=0, description="seconds between probes")
    health_timeout: float = Field(1.0, gt=0, description="seconds per probe")
    rise: int = Field(2, ge=1, description="good probes that bring an upstream back")
    fall: int = Field(2, ge=1, description="failed probes that take an upstream out")

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")) or "/" in url.split("://", 1)[1]:
                raise ValueError(f"upstream {url!r} must look like http://host:port")
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 - raises ValueError for a port out of range
            except ValueError as exc:
                raise ValueError(f"upstream {url!r}: {exc}") from exc
            if not parts.hostname:
                raise ValueError(f"upstream {url!r} has no host")
        return urls


class LimitSettings(StrictModel):
    max_header_bytes: int = Field(32 * 1024, gt=0, description="request head size, bytes")
    max_headers: int = Field(100, gt=0, description="request header lines")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=0, description="request body, bytes")
    max_pipelined: int = Field(32, ge=1, description="queued requests per connection")
    header_timeout: float = Field(
        10.0, gt=0, description="seconds to receive a request head (slow-loris)"
    )
    body_timeout: float = Field(30.0, gt=0, description="seconds to receive a request body")
    idle_timeout: float = Field(
        60.0, gt=0, description="seconds a keep-alive connection may wait for a request"
    )
    max_connections: int = Field(10_000, ge=1, description="client connections in total")
    max_connections_per_client: int = Field(
        256, ge=1, description="client connections from one address"
    )


class NodeConfig(StrictModel):
    tier: Literal["edge", "mid"] = "edge"
    # Defaults to the tier ("edge" or "mid") when not given (see _default_name).
    name: str = Field("edge", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and data.get("tier") == "mid":
            return {**data, "name": "mid"}
        return data

    @model_validator(mode="after")
    def _distinct_ports(self) -> NodeConfig:
        host, admin_port = self.admin_address()
        if self.port and admin_port == self.port and host == self.host:
            raise ValueError(f"admin_port: {admin_port} is also the data port")
        if self.tls.port and self.tls.port in (self.port, admin_port) and host == self.host:
            raise ValueError(f"tls.port: {self.tls.port} is already the data or admin port")
        return self
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    admin_host: str | None = None
    admin_port: int | None = Field(None, ge=0, le=65535)
    upstream: UpstreamSettings = UpstreamSettings()
    cache: CacheSettings = CacheSettings()
    limits: LimitSettings = LimitSettings()
    failover_window: float = Field(
        0.0, ge=0, description="seconds a stale object may answer when upstreams fail"
    )
    control: ControlSettings = ControlSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    tls: TlsSettings = TlsSettings()
    signed_urls: SignedUrlSettings = SignedUrlSettings()
    # Compression and image variants; applied by edges only (a mid tier forwards what it
    # stores, so edges can make variants close to clients).
    optimize: OptimizeSettings = OptimizeSettings()
    # Client RTTs measured on real connections, reported to the DNS router (edges).
    rtt_report: RttReportSettings = RttReportSettings()
    # Sampled JSON access log (cdn_core.node.accesslog): sample 0 turns it off.
    access_log: AccessLogSettings = AccessLogSettings()

    def admin_address(self) -> tuple[str, int]:
        """The admin listener: ``admin_host`` (default ``host``) and ``admin_port``
        (default ``port + 1000``, or an ephemeral port when that is out of range)."""
        port = self.admin_port
        if port is None:
            port = self.port + 1000 if self.port and self.port + 1000 <= 65535 else 0
        return self.admin_host or self.host, port
