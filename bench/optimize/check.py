"""Correctness checks of the optimisation bench: decoded bodies against the files, image
formats and dimensions against what the profile accepts, PSNR of lossy images."""

from __future__ import annotations

import io
import math
import zlib

import brotli
from PIL import Image, ImageChops, ImageOps, ImageStat

from bench.optimize.http1 import Response
from bench.optimize.profiles import MEDIA, Profile, Served


def decode(coding: str, body: bytes) -> bytes:
    if coding == "br":
        return bytes(brotli.decompress(body))
    if coding in ("gzip", "x-gzip"):
        d = zlib.decompressobj(31)
        out = d.decompress(body) + d.flush()
        if not d.eof or d.unused_data:
            raise ValueError("gzip stream not exactly one member")
        return out
    if coding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unknown coding {coding!r}")


def _rgb(im: Image.Image) -> Image.Image:
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    a, b = _rgb(a), _rgb(b)
    if a.mode != b.mode:
        a, b = a.convert("RGBA"), b.convert("RGBA")
    rms = ImageStat.Stat(ImageChops.difference(a, b)).rms
    mse = sum(x * x for x in rms) / len(rms)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def check(
    r: Response, original: bytes, mtype: str, profile: Profile, where: str, problems: list[str]
) -> Served:
    """Verify one answer (see the module docstring); problems are appended."""

    def bad(msg: str) -> None:
        problems.append(f"{where}: {msg}")

    ce = r.get("content-encoding").lower()
    ctype = r.get("content-type").split(";", 1)[0].strip().lower()
    served = Served(
        r.status, len(r.body), r.wire_bytes, ce or "identity", r.get("etag"), r.get("cache-status")
    )
    if r.status != 200:
        bad(f"status {r.status}")
        return served
    if "content-length" in r.fields and int(r.get("content-length")) != len(r.body):
        bad(f"Content-Length {r.get('content-length')} but {len(r.body)} body bytes")
    if ce and ce != "identity":
        if ce not in profile.codings:
            bad(f"Content-Encoding {ce} not accepted by profile {profile.name}")
        try:
            payload = decode(ce, r.body)
        except Exception as exc:  # noqa: BLE001 - any decode failure is a finding
            bad(f"cannot decode {ce}: {exc!r}")
            return served
    else:
        payload = r.body
    if mtype in MEDIA.values() and ctype != mtype:
        served.label = ctype.removeprefix("image/")
        if ctype not in profile.image_types:
            bad(f"{ctype} sent for a {mtype} to a client whose Accept does not name it")
        if ce:
            bad(f"image variant with Content-Encoding {ce}")
        try:
            got = Image.open(io.BytesIO(payload))
            got.load()
            want = Image.open(io.BytesIO(original))
            want.load()
        except Exception as exc:  # noqa: BLE001
            bad(f"{ctype} body does not decode: {exc!r}")
            return served
        ws, gs = _rgb(want).size, got.size
        if ws != gs:
            bad(f"{ctype} is {gs[0]}x{gs[1]}, original {ws[0]}x{ws[1]}")
        else:
            served.psnr = psnr(want, got)
        if len(payload) >= len(original):
            bad(f"{ctype} variant ({len(payload)} B) not smaller than original ({len(original)} B)")
    elif payload != original:
        bad(
            f"decoded body ({len(payload)} B, {ce or 'identity'}) differs from the file "
            f"({len(original)} B)"
        )
    return served


def is_hit(cache_status: str) -> bool:
    """Whether this tier's (the last) Cache-Status member says ``hit`` (RFC 9211)."""
    params = cache_status.split(",")[-1].split(";")[1:]
    return any(p.strip() == "hit" for p in params)
