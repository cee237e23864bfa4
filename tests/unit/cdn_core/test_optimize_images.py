"""Image transforms with Pillow on the example site's photos: conversion, resizing,
safety limits (decompression bombs) and signed resize URLs. No event loop."""

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from cdn_core.optimize.images import (
    ImageError,
    ImageRefused,
    check,
    encoders_available,
    render,
    sign,
    signed_target,
    sniff,
    split_target,
    verify,
)
from cdn_core.optimize.settings import ImageSettings

IMAGES = Path(__file__).parents[3] / "examples" / "site" / "images"
SECRET = "s3cret"
S = ImageSettings(secret=SECRET, avif_speed=8)


def photo(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_pillow_here_has_webp_and_avif():
    assert encoders_available() == {"webp": True, "avif": True}


@pytest.mark.parametrize(
    ("name", "fmt", "size"),
    [
        ("astronaut.jpg", "jpeg", (512, 512)),
        ("rocket.jpg", "jpeg", (640, 427)),
        ("chelsea-small.png", "png", (300, 200)),
    ],
)
def test_sniff_reads_dimensions_without_decoding(name, fmt, size):
    assert sniff(photo(name)) == (fmt, *size)


def test_sniff_gif_and_garbage():
    buf = io.BytesIO()
    Image.new("P", (33, 17)).save(buf, "GIF")
    assert sniff(buf.getvalue()) == ("gif", 33, 17)
    with pytest.raises(ImageError):
        sniff(b"<html>not an image</html>")
    with pytest.raises(ImageError):
        sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF")  # truncated before any frame header


def test_webp_and_avif_of_every_photo_are_smaller():
    for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "chelsea-small.png"):
        data = photo(name)
        w, h = Image.open(io.BytesIO(data)).size
        webp = render(data, "webp", None, S)
        assert opened(webp.body).format == "WEBP"
        assert (webp.width, webp.height) == (w, h)
        assert len(webp.body) < len(data), name
    avif = render(photo("rocket.jpg"), "avif", None, S)
    assert opened(avif.body).format == "AVIF"
    assert len(avif.body) < len(photo("rocket.jpg"))


def test_resize_keeps_aspect_and_never_enlarges():
    data = photo("rocket.jpg")  # 640x427
    small = render(data, "jpeg", 320, S)
    assert (small.width, small.height) == (320, 214)
    assert opened(small.body).size == (320, 214)
    assert len(small.body) < len(data)
    same = render(data, "webp", 1920, S)
    assert (same.width, same.height) == (640, 427)


def test_png_alpha_is_kept_and_gif_gives_its_first_frame():
    buf = io.BytesIO()
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(buf, "PNG")
    out = opened(render(buf.getvalue(), "webp", None, S).body)
    assert out.mode == "RGBA" and out.getpixel((5, 5))[3] in range(120, 136)

    frames = [Image.new("RGB", (50, 40), c) for c in ("red", "blue", "green")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(gif.getvalue())).n_frames == 3
    out = opened(render(gif.getvalue(), "webp", None, S).body)
    assert getattr(out, "n_frames", 1) == 1
    r, g, b = out.convert("RGB").getpixel((10, 10))
    assert r > 200 and g < 60 and b < 60  # the first (red) frame


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    assert opened(render(buf.getvalue(), "webp", None, S).body).size == (20, 40)


# decompression bombs and oversized images
def test_a_huge_dimension_png_header_is_refused_before_decoding():
    bomb = png_header_only(100_000, 100_000)
    assert len(bomb) < 200
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageRefused, match=r"100000x100000 = 10000000000 pixels exceeds"):
        check(bomb, S)
    with pytest.raises(ImageRefused):
        render(bomb, "webp", 320, S)
    assert limit_before == Image.MAX_IMAGE_PIXELS  # never changed globally


def test_limits_are_per_call():
    data = photo("rocket.jpg")  # 273,280 pixels, 112,525 bytes
    with pytest.raises(ImageRefused, match="pixels exceeds the limit of 100000"):
        render(data, "webp", None, ImageSettings(max_pixels=100_000))
    with pytest.raises(ImageRefused, match="bytes exceeds"):
        check(data, ImageSettings(max_input_bytes=100_000))
    assert render(data, "webp", 160, S).width == 160  # the default limits allow it


def test_corrupt_images_raise_image_error():
    data = photo("rocket.jpg")
    with pytest.raises(ImageError):
        render(data[:2000] + b"\0" * 50, "webp", None, S)
    with pytest.raises(ImageError):
        render(png_header_only(10, 10)[:-12] + b"garbage", "webp", None, S)


# signed resize URLs
def test_signed_resize_urls_round_trip():
    target = signed_target("/images/rocket.jpg", 320, SECRET, S)
    source, rr = split_target(target, S)
    assert source == "/images/rocket.jpg"
    assert rr is not None and rr.width == 320
    assert verify(rr, S) is None
    assert rr.signature == sign("/images/rocket.jpg", 320, SECRET)


def test_other_query_parameters_are_kept_and_signed():
    target = signed_target("/a.png?v=3", 640, SECRET, S)
    assert target.startswith("/a.png?v=3&w=640&sig=")
    source, rr = split_target(target, S)
    assert source == "/a.png?v=3" and verify(rr, S) is None
    # moving the signature to another version of the file fails
    _, forged = split_target(target.replace("v=3", "v=4"), S)
    assert verify(forged, S) == "bad resize signature"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("/a.jpg?w=320", "unsigned resize request"),
        ("/a.jpg?w=320&sig=AAAA", "bad resize signature"),
        ("/a.jpg?w=abc&sig=x", "invalid width 'abc'"),
        ("/a.jpg?w=333&sig=" + sign("/a.jpg", 333, SECRET), "width 333 is not allowed"),
        ("/b.jpg?w=320&sig=" + sign("/a.jpg", 320, SECRET), "bad resize signature"),
        ("/a.jpg?w=640&sig=" + sign("/a.jpg", 320, SECRET), "bad resize signature"),
    ],
)
def test_unsigned_unlisted_and_forged_requests_are_refused(target, problem):
    _, rr = split_target(target, S)
    assert rr is not None
    assert verify(rr, S).startswith(problem)


def test_without_a_secret_nothing_is_signed():
    _, rr = split_target(signed_target("/a.jpg", 320, SECRET, S), S)
    assert "no signing secret" in verify(rr, ImageSettings())


def test_targets_without_resize_parameters():
    assert split_target("/a.jpg", S) == ("/a.jpg", None)
    assert split_target("/a.jpg?v=1", S) == ("/a.jpg?v=1", None)
