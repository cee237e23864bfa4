"""Settings of a node's link to the control plane and of edge rate limiting (fields
``control`` and ``ratelimit`` of :class:`cdn_core.node.settings.node.NodeConfig`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from cdn_core.config import StrictModel
from cdn_core.endpoints import split_urls
from cdn_core.errors import StartupError


class ControlSettings(StrictModel):
    """The node's link to the control plane: heartbeats (registration, purge catch-up by
    sequence number, rate-limit policies, signing keys)."""

    url: str | None = Field(
        None, description="control plane base URL: heartbeats, purge catch-up, rate limits; "
        "several replicas as URL1,URL2 (the next one is tried when one fails)"
    )
    token: SecretStr | None = Field(None, description="node token (prefer token_file)")
    token_file: str | None = Field(None, description="file whose first line is the node token")
    interval: float = Field(1.0, gt=0, le=3600, description="seconds between heartbeats")
    timeout: float = Field(2.0, gt=0, le=60, description="seconds per control plane call")
    startup_sync_timeout: float = Field(
        3.0,
        ge=0,
        le=600,
        description="seconds a starting node waits for its first heartbeat (purges it "
        "missed when it holds content; policies and keys always) before it serves",
    )
    state_file: str | None = Field(
        None, description="file keeping the last applied purge seq (for disk stores)"
    )
    advertise_host: str | None = Field(None, description="address to register (default host)")

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return ",".join(split_urls(url)) if url else url

    @property
    def urls(self) -> list[str]:
        """The control-plane replicas' base URLs, in the configured order."""
        return split_urls(self.url) if self.url else []

    def resolve_token(self) -> str | None:
        """The node token: the first line of ``token_file``, else ``token``.

        Raises:
            StartupError: ``token_file`` cannot be read or is empty (naming it).
        """
        if self.token_file:
            try:
                text = Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise StartupError(
                    f"cannot read control token file {self.token_file}: {exc.strerror or exc}"
                ) from exc
            if not text:
                raise StartupError(f"control token file {self.token_file} is empty")
            return text.splitlines()[0].strip()
        return self.token.get_secret_value() if self.token else None


class RateLimitSettings(StrictModel):
    """Where rate-limit counters live; the policies themselves come from the control plane
    (``cdnctl ratelimit``), answered with 429 and Retry-After (RFC 6585 4)."""

    redis_url: str | None = Field(
        None, description="redis://host:port/db for cluster-wide counters (policies 'cluster')"
    )
    redis_timeout: float = Field(
        0.05, gt=0, le=5, description="seconds per Redis check; slower ones count per edge"
    )
    max_buckets: int = Field(100_000, ge=1, description="per-edge buckets kept in memory")
