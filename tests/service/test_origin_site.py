"""The example site the one-host demo serves (examples/site), through the origin: every
page is real HTML5 of some size linking the CSS and JS, and every image it references
exists with the width and height the page declares."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from cdn_core.metrics import new_registry
from origin.app import create_app
from origin.config import OriginConfig

SITE = Path(__file__).resolve().parents[2] / "examples" / "site"
PAGES = ["index.html", "about.html", "gallery.html", "404.html"]


class Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img" and a.get("src"):
            self.imgs.append(a)
        elif tag == "link" and a.get("rel") == "stylesheet":
            self.links.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.scripts.append(a["src"])


def test_site_is_small():
    total = sum(p.stat().st_size for p in SITE.rglob("*") if p.is_file())
    assert total < 1_500_000


@pytest.mark.parametrize("page", PAGES)
def test_pages_are_html5_and_link_css_and_js(page):
    text = (SITE / page).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert len(text.encode()) > 1024
    refs = Refs()
    refs.feed(text)
    assert refs.links == ["/css/site.css"]
    assert refs.scripts == ["/js/app.js"]
    for img in refs.imgs:
        path = SITE / img["src"].lstrip("/")
        with Image.open(path) as im:
            assert (int(img["width"]), int(img["height"])) == im.size, img["src"]
        assert img.get("alt")


def test_gallery_shows_every_photo_and_there_is_a_png():
    refs = Refs()
    refs.feed((SITE / "gallery.html").read_text(encoding="utf-8"))
    shown = {img["src"] for img in refs.imgs}
    photos = {f"/images/{p.name}" for p in (SITE / "images").iterdir() if p.suffix != ".txt"}
    assert shown == photos
    assert any(p.endswith(".png") for p in photos)
    credits = (SITE / "images" / "CREDITS.txt").read_text()
    for name in photos:
        assert Path(name).name in credits


async def test_origin_serves_the_site(aiohttp_client):
    app = create_app(OriginConfig(root=SITE), registry=new_registry())
    client = await aiohttp_client(app)
    for path, ctype in [
        ("/", "text/html"),
        ("/gallery.html", "text/html"),
        ("/css/site.css", "text/css"),
        ("/js/app.js", "text/javascript"),
        ("/images/rocket.jpg", "image/jpeg"),
        ("/images/chelsea-small.png", "image/png"),
    ]:
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Type"].startswith(ctype)
        await resp.read()
    missing = await client.get("/nope")
    assert missing.status == 404
    assert re.search(rb"Out of frame", await missing.read())
