"""The rate-limit policy shape shared by the control plane (which validates and stores
policies) and the edges (which apply them): one pydantic model, so both sides agree.

A policy is a token bucket: ``limit`` requests per ``window`` seconds (the bucket holds
``limit`` tokens and refills at ``limit / window`` tokens a second). It applies to
requests whose host is ``host`` (any host when null) and whose path starts with
``path_prefix``; each distinct value of ``key`` gets its own bucket:

- ``client``: the client's address;
- ``api_key``: the value of the ``api_key_header`` request field (requests without it
  are not counted by this policy: pair it with a ``client`` policy to cover them);
- ``host``: the request's host (one bucket per site);
- ``path_prefix``: one bucket for every request under the prefix.

``mode: shadow`` only counts what would have been refused. ``counters: cluster`` shares
the buckets between edges through Redis when the edge has ``ratelimit.redis_url``;
without it the edge counts alone. The ``name`` appears in the ``RateLimit-Policy`` and
``RateLimit`` response fields (draft-ietf-httpapi-ratelimit-headers).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


class RateLimitPolicy(BaseModel):
    """One policy (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    key: Literal["client", "api_key", "host", "path_prefix"] = "client"
    host: str | None = Field(default=None, max_length=253)
    service: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """Only requests to this service (issue 20; whatever host of it); None: any."""
    path_prefix: str = Field(default="/", min_length=1, max_length=2048)
    api_key_header: str = "x-api-key"
    limit: StrictInt = Field(ge=1, le=1_000_000_000)
    window: StrictFloat | StrictInt = Field(gt=0, le=86_400)
    mode: Literal["enforce", "shadow"] = "enforce"
    counters: Literal["edge", "cluster"] = "edge"

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host = value.lower().rstrip(".")
        if not _HOST.match(host):
            raise ValueError(f"not a host name (no port, no scheme): {value!r}")
        return host

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or any(ch.isspace() for ch in value):
            raise ValueError(f"must start with '/' and contain no whitespace: {value!r}")
        return value

    @field_validator("api_key_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER.match(value):
            raise ValueError(f"not a header field name: {value!r}")
        return value.lower()

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.limit / float(self.window)
