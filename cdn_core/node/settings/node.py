"""Configuration of a caching node (edge or mid tier): :class:`NodeConfig`, assembled from
the section models beside it. ``configs/edge.yaml`` and ``configs/mid_tier.yaml`` hold
these fields; command-line flags override them."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, model_validator

from cdn_core.config import StrictModel
from cdn_core.node.settings.cache import CacheSettings
from cdn_core.node.settings.control import ControlSettings, RateLimitSettings
from cdn_core.node.settings.edge import SignedUrlSettings, TlsSettings
from cdn_core.node.settings.limits import LimitSettings
from cdn_core.node.settings.observe import AccessLogSettings, RttReportSettings
from cdn_core.node.settings.upstream import UpstreamSettings
from cdn_core.optimize.settings import OptimizeSettings


class NodeConfig(StrictModel):
    tier: Literal["edge", "mid"] = Field(
        "edge", description="edge (faces clients) or mid (origin shield between edges and "
        "the origin); sets the tier's defaults (trusted forwarders, the name)")
    # Defaults to the tier ("edge" or "mid") when not given (see _default_name).
    name: str = Field("edge", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="node name "
                      "in Cache-Status and Via (RFC 9211, RFC 9110 7.6.3), metrics and the "
                      "registry; default: the tier")

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

    host: str = Field("127.0.0.1", description="address of the HTTP listener")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0: any free port)")
    admin_host: str | None = Field(None, description="address of the admin listener "
                                   "(/healthz /status /metrics, purge); null: host")
    admin_port: int | None = Field(None, ge=0, le=65535, description="admin port; null: "
                                   "port + 1000 (an ephemeral port when out of range)")
    upstream: UpstreamSettings = UpstreamSettings()
    cache: CacheSettings = CacheSettings()
    limits: LimitSettings = LimitSettings()
    trusted_forwarders: list[IPvAnyNetwork] | None = Field(
        None,
        description="downstream networks whose X-Forwarded-* / Forwarded fields are kept "
        "and whose X-Forwarded-Proto is the client's scheme in the cache key; "
        "null: loopback for a mid tier (its edges), nobody for an edge",
    )
    failover_window: float = Field(
        0.0, ge=0, description="seconds a stale object may answer when upstreams fail"
    )
    gc_full_interval: float = Field(
        300.0, ge=0, description="seconds between the process's full garbage collections, "
        "run on the event loop instead of CPython's rule (every time the long-lived objects "
        "grew a quarter, which a filling cache makes every few seconds); 0: CPython's rule "
        "(cdn_core.gc_schedule)")
    control: ControlSettings = ControlSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    tls: TlsSettings = TlsSettings()
    signed_urls: SignedUrlSettings = SignedUrlSettings()
    # Compression and image variants; applied by edges only (a mid tier forwards what it
    # stores, so edges can make variants close to clients).
    optimize: OptimizeSettings = OptimizeSettings()
    # Client RTTs measured on real connections, reported to the DNS router (edges).
    rtt_report: RttReportSettings = RttReportSettings()
    # Sampled JSON access log (cdn_core.node.observe.accesslog): sample 0 turns it off.
    access_log: AccessLogSettings = AccessLogSettings()

    def forwarders(self) -> list[IPv4Network | IPv6Network]:
        """:attr:`trusted_forwarders`, or the tier's default when not set."""
        if self.trusted_forwarders is not None:
            return list(self.trusted_forwarders)
        return [ip_network("127.0.0.0/8"), ip_network("::1/128")] if self.tier == "mid" else []

    def admin_address(self) -> tuple[str, int]:
        """The admin listener: ``admin_host`` (default ``host``) and ``admin_port``
        (default ``port + 1000``, or an ephemeral port when that is out of range)."""
        port = self.admin_port
        if port is None:
            port = self.port + 1000 if self.port and self.port + 1000 <= 65535 else 0
        return self.admin_host or self.host, port
