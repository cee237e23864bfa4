"""Image variants with Pillow: JPEG, PNG and GIF (first frame) to AVIF or WebP, resized
to allowed widths through HMAC-signed URLs.

Safety: the dimensions are read from the file header by :func:`sniff` (no Pillow, no
decoding) and the image is refused with :class:`ImageRefused` when it has more pixels
than the per-call limit or more bytes than allowed, before Pillow sees it. The limit is
applied per call; Pillow's global ``Image.MAX_IMAGE_PIXELS`` is never changed (the
effective limit is the smaller of the two, so Pillow's own bomb check never fires on an
image we accepted). Every Pillow error is translated to :class:`ImageError`.

Resize URLs: ``/photo.jpg?w=320&sig=<sig>`` where ``sig`` is the unpadded URL-safe
base64 of HMAC-SHA256(secret, ``"w=320\\n/photo.jpg"``), the second line being the target
without the ``w`` and ``sig`` parameters (:func:`sign`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import struct
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError, features

from cdn_core.errors import CdnError
from cdn_core.optimize.settings import ImageSettings

SOURCE_FORMATS = {
    "image/jpeg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
}
_PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "avif": "AVIF"}


class ImageError(CdnError):
    """An image could not be decoded or encoded."""


class ImageRefused(ImageError):
    """An image too large (pixels or bytes) to process safely; never decoded."""


def encoders_available() -> dict[str, bool]:
    """Which output encoders this Pillow build has (``avif`` needs Pillow 11.2+ with
    libavif)."""
    return {"webp": bool(features.check("webp")), "avif": bool(features.check("avif"))}


# Header sniffing -------------------------------------------------------------------------

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def sniff(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` read from the header of a JPEG, PNG or GIF.

    Raises:
        ImageError: not one of those formats, or a header too short to tell.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("PNG without an IHDR header")
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:6] in (b"GIF87a", b"GIF89a"):
        if len(data) < 10:
            raise ImageError("truncated GIF header")
        w, h = struct.unpack("<HH", data[6:10])
        return "gif", w, h
    if data[:2] == b"\xff\xd8":
        i = 2
        n = len(data)
        while i + 4 <= n:
            if data[i] != 0xFF:
                raise ImageError("corrupt JPEG marker stream")
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            if marker in (0xD9, 0xDA):
                break
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker in _JPEG_SOF:
                if i + 9 > n:
                    break
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return "jpeg", w, h
            i += 2 + length
        raise ImageError("JPEG without a frame header")
    raise ImageError("not a JPEG, PNG or GIF image")


def pixel_limit(settings: ImageSettings) -> int:
    """The per-call pixel limit: ours, or Pillow's global if that is lower."""
    pil = Image.MAX_IMAGE_PIXELS
    return min(settings.max_pixels, pil) if pil else settings.max_pixels


def check(data: bytes, settings: ImageSettings) -> tuple[str, int, int]:
    """:func:`sniff`, then the size limits.

    Raises:
        ImageRefused: more than ``max_input_bytes`` bytes or the pixel limit.
        ImageError: not a JPEG, PNG or GIF.
    """
    if len(data) > settings.max_input_bytes:
        raise ImageRefused(
            f"image refused: {len(data)} bytes exceeds the limit of "
            f"{settings.max_input_bytes} bytes"
        )
    fmt, w, h = sniff(data)
    limit = pixel_limit(settings)
    if w * h > limit or w == 0 or h == 0:
        raise ImageRefused(
            f"image refused: {w}x{h} = {w * h} pixels exceeds the limit of {limit} pixels"
            if w and h
            else f"image refused: invalid dimensions {w}x{h}"
        )
    return fmt, w, h


# Transform --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendition:
    body: bytes
    width: int
    height: int


def render(data: bytes, out_format: str, width: int | None, settings: ImageSettings) -> Rendition:
    """``data`` (JPEG/PNG/GIF; GIF's first frame) encoded as ``out_format`` (``avif``,
    ``webp``, ``jpeg``, ``png``, ``gif``), scaled down to ``width`` pixels wide when
    given and narrower than the image (never up). EXIF orientation is applied; the ICC
    profile is kept; other metadata is dropped.

    Raises:
        ImageRefused: the image exceeds the limits (see :func:`check`).
        ImageError: it cannot be decoded or encoded.
    """
    _, w0, h0 = check(data, settings)
    limit = pixel_limit(settings)
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "GIF")) as im:
            if im.width * im.height > limit:  # a GIF frame larger than its screen
                raise ImageRefused(
                    f"image refused: {im.width}x{im.height} pixels exceeds the limit of "
                    f"{limit} pixels"
                )
            icc = im.info.get("icc_profile")
            target_w = width if width is not None and width < w0 else None
            if target_w is not None and im.format == "JPEG":
                # Let libjpeg scale by 1/2..1/8 while decoding (less work and memory).
                im.draft("RGB", (target_w, max(1, round(h0 * target_w / w0))))
            im.seek(0)
            frame = ImageOps.exif_transpose(im)
            frame = _normalise_mode(frame, out_format)
            if target_w is not None and target_w < frame.width:
                target_h = max(1, round(frame.height * target_w / frame.width))
                frame = frame.resize(
                    (target_w, target_h), Image.Resampling.LANCZOS, reducing_gap=3.0
                )
            out = io.BytesIO()
            frame.save(out, _PIL_NAMES[out_format], **_save_options(out_format, settings, icc))
            return Rendition(out.getvalue(), frame.width, frame.height)
    except ImageError:
        raise
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"cannot convert image to {out_format}: {exc}") from exc
    except (SyntaxError, struct.error, EOFError, KeyError, IndexError) as exc:
        # Raised by some Pillow plugins for malformed files.
        raise ImageError(f"corrupt image: {exc!r}") from exc


def _normalise_mode(im: Image.Image, out_format: str) -> Image.Image:
    alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if out_format == "jpeg":
        return im if im.mode in ("RGB", "L") else im.convert("RGB")
    if out_format == "gif":
        return im if im.mode in ("P", "L") else im.convert("RGBA" if alpha else "RGB")
    if alpha:
        return im if im.mode == "RGBA" else im.convert("RGBA")
    return im if im.mode in ("RGB", "L") and out_format == "png" else im.convert("RGB")


def _save_options(fmt: str, settings: ImageSettings, icc: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if icc and fmt in ("jpeg", "png", "webp", "avif"):
        opts["icc_profile"] = icc
    if fmt == "avif":
        # One libavif thread: the worker pool bounds the parallelism.
        opts.update(quality=settings.avif_quality, speed=settings.avif_speed, max_threads=1)
    elif fmt == "webp":
        opts.update(quality=settings.webp_quality, method=settings.webp_method)
    elif fmt == "jpeg":
        opts.update(quality=settings.jpeg_quality, optimize=True, progressive=True)
    elif fmt == "png":
        opts.update(optimize=True)
    return opts


# Signed resize URLs ------------------------------------------------------------------------


def sign(source_target: str, width: int, secret: str | bytes) -> str:
    """The signature for resizing ``source_target`` (path and query without the resize
    parameters) to ``width``."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"w={width}\n{source_target}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def signed_target(
    source_target: str, width: int, secret: str | bytes, settings: ImageSettings
) -> str:
    """``source_target`` with the width and signature parameters appended."""
    sep = "&" if "?" in source_target else "?"
    sig = sign(source_target, width, secret)
    return f"{source_target}{sep}{settings.width_param}={width}&{settings.signature_param}={sig}"


@dataclass(frozen=True, slots=True)
class ResizeRequest:
    """The resize parameters of a request target. ``width`` is ``None`` when ``w`` was
    not a decimal number; ``signature`` ``None`` when absent."""

    source_target: str
    raw_width: str
    width: int | None
    signature: str | None


def split_target(target: str, settings: ImageSettings) -> tuple[str, ResizeRequest | None]:
    """``(source target, resize request)``: the target without the width and signature
    parameters (other parameters kept in order, as sent), and the resize request when a
    width parameter was present."""
    path, q, query = target.partition("?")
    if not q:
        return target, None
    kept: list[str] = []
    raw_w: str | None = None
    sig: str | None = None
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == settings.width_param:
            raw_w = value
        elif name == settings.signature_param:
            sig = value
        elif part:
            kept.append(part)
    if raw_w is None and sig is None:
        return target, None
    source = path + ("?" + "&".join(kept) if kept else "")
    if raw_w is None:
        return source, None
    width = int(raw_w) if raw_w.isdigit() and len(raw_w) <= 6 else None
    return source, ResizeRequest(source, raw_w, width, sig)


def verify(req: ResizeRequest, settings: ImageSettings) -> str | None:
    """``None`` when ``req`` may be served, else why not (for the 400 message)."""
    if req.width is None:
        return f"invalid width {req.raw_width[:16]!r}"
    if req.width not in settings.widths:
        allowed = ", ".join(str(w) for w in settings.widths)
        return f"width {req.width} is not allowed (allowed: {allowed})"
    if settings.secret is None:
        return "resizing is not enabled (no signing secret configured)"
    if not req.signature:
        return "unsigned resize request"
    expected = sign(req.source_target, req.width, settings.secret.get_secret_value())
    if not hmac.compare_digest(expected.encode(), req.signature.encode()):
        return "bad resize signature"
    return None
