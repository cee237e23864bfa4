"""The origin's configuration (``configs/origin.yaml``).

Every default here equals the value in ``configs/origin.yaml``, so ``python -m origin``
runs without a config file. Relative paths (``root``) are relative to the current
directory, as with any command-line path. Environment overrides use the prefix
``CDN_ORIGIN`` (``CDN_ORIGIN__PORT=18081``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from cdn_core.config import StrictModel, load_config
from cdn_core.shipped import example_site

ENV_PREFIX = "CDN_ORIGIN"

# A header value we emit verbatim must not smuggle a line break or control character.
_FIELD_VALUE_RE = re.compile(r"^[\x20-\x7e]+$")
# Surrogate keys are space-separated in one header, so each must be a visible token.
_SURROGATE_KEY_RE = re.compile(r"^[\x21-\x7e]+$")


class CacheRule(StrictModel):
    """One path rule. ``match`` is a glob (``fnmatch``, case-sensitive, ``*`` also
    matches ``/``) over the served file's path relative to the root without a leading
    slash (``index.html``, ``css/site.css``).

    The first matching rule that has ``cache_control`` sets the ``Cache-Control`` header;
    ``surrogate_keys`` of *every* matching rule are joined, in rule order, into the
    ``Surrogate-Key`` header (so a final ``match: "*"`` rule can tag everything).
    """

    match: str = Field(min_length=1)
    cache_control: str | None = None
    surrogate_keys: tuple[str, ...] = ()

    @field_validator("match")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        pattern = value.lstrip("/")
        if not pattern:
            raise ValueError("a pattern must name more than '/' (use '*' for every path)")
        return pattern

    @field_validator("cache_control")
    @classmethod
    def _visible(cls, value: str | None) -> str | None:
        if value is not None and not _FIELD_VALUE_RE.match(value):
            raise ValueError("must be non-empty printable ASCII on one line")
        return value

    @field_validator("surrogate_keys")
    @classmethod
    def _tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if not _SURROGATE_KEY_RE.match(key):
                raise ValueError(f"surrogate key {key!r} must be visible ASCII without spaces")
        return value


DEFAULT_RULES: tuple[CacheRule, ...] = (
    CacheRule(
        match="*.html",
        cache_control="public, max-age=60, stale-while-revalidate=30, stale-if-error=3600",
        surrogate_keys=("html",),
    ),
    CacheRule(match="css/*", cache_control="public, max-age=3600", surrogate_keys=("css",)),
    CacheRule(match="js/*", cache_control="public, max-age=3600", surrogate_keys=("js",)),
    CacheRule(match="images/*", cache_control="public, max-age=86400", surrogate_keys=("images",)),
    CacheRule(match="*", cache_control="public, max-age=300", surrogate_keys=("site",)),
)


class SyntheticObjects(StrictModel):
    """Synthetic objects for trace replay (``origin/synthetic.py``): ``GET
    {prefix}{id}/{size}`` answers ``size`` bytes derived from ``id``."""

    prefix: str = Field("/obj/", pattern=r"^/[A-Za-z0-9._/-]*/$",
                        description="path prefix of synthetic objects (starts and ends with /)")
    cache_control: str = Field("public, max-age=86400", description="their Cache-Control")
    max_size: int = Field(1 << 30, ge=0, description="largest size served, in bytes")

    @field_validator("cache_control")
    @classmethod
    def _visible(cls, value: str) -> str:
        if not _FIELD_VALUE_RE.match(value):
            raise ValueError("must be non-empty printable ASCII on one line")
        return value


class OriginConfig(StrictModel):
    """Settings of one origin process.

    ``port``/``admin_port`` are TCP ports (0 picks a free one); ``admin_host`` defaults to
    ``host``. ``root`` must be an existing directory (default:
    :func:`~cdn_core.shipped.example_site`). ``status_max_paths`` bounds the ``by_path`` map
    of ``/status`` (paths past it are counted under ``"(other)"``).
    """

    name: str = Field(default="origin", min_length=1,
                      description="name in logs, metrics and the node registry")
    host: str = Field("127.0.0.1", description="address of the HTTP listener")
    port: int = Field(default=18080, ge=0, le=65535, description="HTTP port (0: any free port)")
    admin_host: str | None = Field(None, description="admin address; null: host")
    admin_port: int = Field(default=19080, ge=0, le=65535,
                            description="admin port: /healthz /status /metrics")
    root: Path = Field(
        default_factory=example_site,
        description="directory served, relative to the current directory (nginx root)",
        json_schema_extra={"default_shown": "`examples/site` (here, else the shipped one)"})
    index: str = Field(default="index.html", min_length=1,
                       description="file served for / and directories (nginx index)")
    not_found_page: str | None = Field(
        "404.html", description="file under root sent as the 404 body; null: a short text")
    not_found_cache_control: str | None = Field(
        "public, max-age=10", description="Cache-Control of 404 responses, so a CDN caches "
        "misses briefly (negative caching); null: none")
    cache_rules: tuple[CacheRule, ...] = Field(
        DEFAULT_RULES, description="list of {match, cache_control, surrogate_keys}: glob over "
        "the file's path under root; the first match with cache_control sets Cache-Control, "
        "the surrogate_keys of every match are joined into Surrogate-Key (Fastly)")
    status_max_paths: int = Field(default=10_000, ge=1, description="distinct paths counted "
                                  "in /status by_path; the rest count as (other)")
    synthetic: SyntheticObjects | None = Field(
        None, description="serve synthetic objects too (trace replay, bench.replay); null: "
        "files only")

    @field_validator("root")
    @classmethod
    def _root_is_dir(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"not a directory: {value}")
        return value

    @field_validator("index", "not_found_page")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and ("/" in value or value.startswith(".")):
            raise ValueError("must be a plain file name (no '/', not a dotfile)")
        return value

    @field_validator("not_found_cache_control")
    @classmethod
    def _visible(cls, value: str | None) -> str | None:
        if value is not None and not _FIELD_VALUE_RE.match(value):
            raise ValueError("must be non-empty printable ASCII on one line")
        return value

    @property
    def effective_admin_host(self) -> str:
        """The admin listen address: ``admin_host``, else ``host``."""
        return self.admin_host or self.host


def load_origin_config(
    path: str | os.PathLike[str] | None, overrides: dict[str, Any] | None = None
) -> OriginConfig:
    """The config from ``path`` (optional), then ``CDN_ORIGIN__*`` variables, then
    ``overrides`` (flags; ``None`` values ignored).

    Raises:
        cdn_core.errors.ConfigError: naming the file and field (``...: root: ...``).
    """
    return load_config(OriginConfig, path, overrides, env_prefix=ENV_PREFIX)
