"""Settings of what a node reports about itself: the sampled access log
(:mod:`cdn_core.node.observe.accesslog`) and client RTT reports to the DNS router
(:mod:`cdn_core.node.observe.rtt`)."""

from __future__ import annotations

from pydantic import Field

from cdn_core.config import StrictModel


class AccessLogSettings(StrictModel):
    """The sampled JSON access log: one line per logged request (method, path, status,
    cache status, protocol, bytes, timings)."""

    sample: float = Field(
        0.01, ge=0, le=1, description="fraction of requests logged (0: off, 1: all)"
    )
    path: str | None = Field(None, description="file to append to (null: standard output)")


class RttReportSettings(StrictModel):
    """Client round-trip times measured on real connections (TCP_INFO), aggregated per
    client network and posted to the DNS router, which answers by latency (edges)."""

    url: str | None = Field(None, description="router admin URL, e.g. http://127.0.0.1:19053")
    interval: float = Field(5.0, gt=0, description="seconds between reports")
    ipv4_prefix: int = Field(24, ge=8, le=32, description="IPv4 client network length the "
                             "RTTs are grouped by (as the router's ECS scope, RFC 7871)")
    ipv6_prefix: int = Field(56, ge=16, le=128, description="IPv6 client network length the "
                             "RTTs are grouped by")
