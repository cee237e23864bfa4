"""Settings of what a node reports about itself: the sampled access log
(:mod:`cdn_core.node.observe.accesslog`) and client RTT reports to the DNS router
(:mod:`cdn_core.node.observe.rtt`)."""

from __future__ import annotations

from pydantic import Field

from cdn_core.config import StrictModel


class AccessLogSettings(StrictModel):
    sample: float = Field(
        0.01, ge=0, le=1, description="fraction of requests logged (0: off, 1: all)"
    )
    path: str | None = Field(None, description="file to append to (null: standard output)")


class RttReportSettings(StrictModel):
    url: str | None = Field(None, description="router admin URL, e.g. http://127.0.0.1:19053")
    interval: float = Field(5.0, gt=0, description="seconds between reports")
    ipv4_prefix: int = Field(24, ge=8, le=32)
    ipv6_prefix: int = Field(56, ge=16, le=128)
