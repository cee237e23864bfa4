"""Client profiles of the optimisation bench and what it records per answer."""

from __future__ import annotations

from dataclasses import dataclass, field

MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif"}


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    headers: dict[str, str]
    codings: frozenset[str]  # content codings it accepts
    image_types: frozenset[str]  # image types it names in Accept


PROFILES = (
    Profile("none", "no compression", {"Accept": "*/*"}, frozenset(), frozenset()),
    Profile(
        "gzip",
        "gzip only",
        {"Accept": "*/*", "Accept-Encoding": "gzip"},
        frozenset({"gzip"}),
        frozenset(),
    ),
    Profile(
        "br",
        "br+gzip",
        {"Accept": "*/*", "Accept-Encoding": "gzip, deflate, br"},
        frozenset({"gzip", "deflate", "br"}),
        frozenset(),
    ),
    Profile(
        "img",
        "image-capable browser",
        {"Accept": "image/avif,image/webp,*/*", "Accept-Encoding": "br, gzip"},
        frozenset({"br", "gzip"}),
        frozenset({"image/avif", "image/webp"}),
    ),
    # Not one of the four of issue 6: a browser with WebP but no AVIF (Safari before 16,
    # older Chrome), so that WebP encodes are measured too.
    Profile(
        "webp",
        "(extra) WebP-only browser",
        {"Accept": "image/webp,*/*", "Accept-Encoding": "gzip, deflate, br"},
        frozenset({"gzip", "deflate", "br"}),
        frozenset({"image/webp"}),
    ),
)


@dataclass
class Served:
    """One measured answer."""

    status: int
    body: int
    wire: int
    label: str  # identity | br | gzip | avif | webp | jpeg ...
    etag: str = ""
    cache_status: str = ""
    psnr: float | None = None


@dataclass
class Totals:
    body: int = 0
    wire: int = 0
    psnr: list[float] = field(default_factory=list)
