"""Where a node fetches from: upstream URLs, timeouts, pool size, selection (rendezvous or
ordered) and active health checks. Field ``upstream`` of
:class:`cdn_core.node.settings.node.NodeConfig`."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from cdn_core.config import StrictModel


class UpstreamSettings(StrictModel):
    """Where the node fetches misses from (an edge: the mid tiers; a mid tier: the origin
    and its replicas), with timeouts, pooling and health checks (nginx ``upstream``)."""

    urls: list[str] = Field(default_factory=list, description="http://host:port of upstreams")
    connect_timeout: float = Field(2.0, gt=0, description="seconds")
    timeout: float = Field(30.0, gt=0, description="seconds for the whole upstream response")
    pool_size: int = Field(64, ge=1, description="connections per upstream")
    fail_threshold: int = Field(1, ge=1, description="consecutive failures that mark it down")
    retry_after: float = Field(2.0, gt=0, description="seconds before a down upstream is tried")
    ca_file: str | None = Field(
        None, description="PEM CA bundle for https upstreams (default: the system's CAs)"
    )
    verify_tls: bool = Field(
        True, description="check https upstreams' certificates and names (nginx "
        "proxy_ssl_verify); off only for an origin you reach over a trusted network"
    )
    selection: Literal["rendezvous", "ordered"] = Field(
        "rendezvous",
        description="rendezvous: spread keys over peers (edges -> mid tiers); ordered: the "
        "first healthy upstream in list order (an origin and its replicas)",
    )
    health_path: str | None = Field(
        None, description="path probed on each upstream for active health checks; null: off"
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
