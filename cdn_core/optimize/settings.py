"""Configuration of content optimisation (the ``optimize:`` section of a node's config).

Levels and qualities are the encoders' own scales. Sizes are bytes. Variants are cached
at the tier that made them, within ``cache_max_bytes``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from cdn_core.config import StrictModel

Coding = Literal["br", "gzip", "zstd"]
OutFormat = Literal["avif", "webp"]

DEFAULT_TYPES = (
    "text/*",
    "application/json",
    "application/*+json",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/xml",
    "application/*+xml",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "font/ttf",
    "font/otf",
    "font/collection",
    "application/x-font-ttf",
    "application/x-font-otf",
    "application/font-sfnt",
    "application/vnd.ms-fontobject",
    "application/wasm",
)


class CompressionSettings(StrictModel):
    """Content codings the edge makes for clients that accept them (RFC 9110 8.4, 12.5.3),
    cached as variants with Vary: Accept-Encoding (nginx ``gzip``/``brotli``)."""

    enabled: bool = Field(True, description="make br/gzip variants of compressible types")
    codings: list[Coding] = Field(
        default_factory=lambda: list[Coding](["br", "gzip"]),
        description="codings to produce; zstd only when a zstd library is installed",
    )
    brotli_level: int = Field(11, ge=0, le=11, description="for bodies below large_bytes")
    brotli_level_large: int = Field(5, ge=0, le=11, description="for bodies of large_bytes+")
    large_bytes: int = Field(1024 * 1024, gt=0, description="bodies of this many bytes or "
                             "more use brotli_level_large (encoding time grows with size)")
    gzip_level: int = Field(6, ge=1, le=9, description="gzip level (nginx gzip_comp_level)")
    zstd_level: int = Field(19, ge=1, le=22, description="zstd level")
    min_bytes: int = Field(1024, ge=0, description="smaller bodies are sent as they are")
    max_bytes: int = Field(16 * 1024 * 1024, gt=0, description="larger bodies are not encoded")
    types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TYPES),
        description="media types to compress; 'type/*' and 'type/*+suffix' patterns allowed",
    )

    @field_validator("types")
    @classmethod
    def _types(cls, types: list[str]) -> list[str]:
        out = []
        for t in types:
            t = t.strip().lower()
            if t.count("/") != 1 or not all(t.split("/")):
                raise ValueError(f"{t!r} is not a media type like text/* or application/json")
            out.append(t)
        return out


class ImageSettings(StrictModel):
    """Image variants: AVIF/WebP of JPEG/PNG/GIF when the client accepts them and the
    result is smaller, and bounded resizes by a signed width parameter."""

    enabled: bool = Field(True, description="make AVIF/WebP variants and allow resizes")
    formats: list[OutFormat] = Field(
        default_factory=lambda: list[OutFormat](["avif", "webp"]),
        description="formats to negotiate from Accept, preferred first",
    )
    avif_quality: int = Field(50, ge=0, le=100, description="AVIF encoder quality")
    avif_speed: int = Field(6, ge=0, le=10, description="0 slowest/smallest, 10 fastest")
    webp_quality: int = Field(75, ge=0, le=100, description="WebP encoder quality")
    webp_method: int = Field(4, ge=0, le=6, description="0 fastest, 6 smallest")
    jpeg_quality: int = Field(82, ge=1, le=95, description="for resized JPEGs")
    widths: list[int] = Field(
        default_factory=lambda: [160, 320, 640, 960, 1280, 1920],
        description="allowed resize widths (the w= parameter)",
    )
    width_param: str = Field("w", pattern=r"^[A-Za-z0-9_.-]{1,32}$",
                             description="query parameter naming the resize width")
    signature_param: str = Field("sig", pattern=r"^[A-Za-z0-9_.-]{1,32}$",
                                 description="query parameter carrying the resize signature")
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for resize URLs; without it no resize is signed"
    )
    unsigned: Literal["reject", "original"] = Field(
        "reject",
        description="resize requests unsigned, badly signed or for unlisted widths: "
        "400 (reject) or the original image (original)",
    )
    max_pixels: int = Field(
        40_000_000, gt=0, description="larger images are refused, never decoded"
    )
    max_input_bytes: int = Field(20 * 1024 * 1024, gt=0,
                                 description="larger originals are served as they are")

    @field_validator("widths")
    @classmethod
    def _widths(cls, widths: list[int]) -> list[int]:
        if any(w <= 0 or w > 16384 for w in widths):
            raise ValueError("widths must be between 1 and 16384 pixels")
        return sorted(set(widths))


class PoolSettings(StrictModel):
    """The threads that encode variants off the event loop (the encoders release the
    GIL), and how much work may wait for them."""

    workers: int = Field(2, ge=1, le=64, description="encoder threads")
    max_pending: int = Field(
        64, ge=1, description="queued + running encodes; beyond it the identity is sent"
    )


class OptimizeSettings(StrictModel):
    """Content optimisation at the edge (a mid tier forwards what it stores, so variants
    are made close to clients): compression and image variants."""

    enabled: bool = Field(True, description="off: no variant of any kind is made")
    disabled_prefixes: list[str] = Field(
        default_factory=list, description="path prefixes never transformed, e.g. /api/"
    )
    cache_max_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="memory for the variants this tier made"
    )
    compression: CompressionSettings = Field(
        default_factory=lambda: CompressionSettings.model_validate({})
    )
    images: ImageSettings = Field(default_factory=lambda: ImageSettings.model_validate({}))
    pool: PoolSettings = Field(default_factory=lambda: PoolSettings.model_validate({}))

    @field_validator("disabled_prefixes")
    @classmethod
    def _prefixes(cls, prefixes: list[str]) -> list[str]:
        for p in prefixes:
            if not p.startswith("/"):
                raise ValueError(f"path prefix {p!r} must start with /")
        return prefixes

    def disabled_for(self, path: str) -> bool:
        """Whether no transform applies to requests for ``path``."""
        return not self.enabled or path.startswith(tuple(self.disabled_prefixes))
