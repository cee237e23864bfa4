"""The Transformer test bench shared by test_optimize_transform.py and
test_optimize_transform_images.py: settings, requests and stored entries from
examples/site, the ``transformer`` / ``make_transformer`` fixtures (registered in this
directory's conftest), and readers of what a variant's head says."""

import gzip
from pathlib import Path

import brotli
import pytest

from cdn_core.metrics import new_registry
from cdn_core.node.exchange.entries import build_entry
from cdn_core.node.exchange.request import Request
from cdn_core.node.settings.cache import CacheSettings
from cdn_core.optimize.settings import OptimizeSettings
from cdn_core.optimize.transform import NEEDS_ENCODING, create_transformer

SITE = Path(__file__).parents[3] / "examples" / "site"
HOST = "www.example.test"
SECRET = "s3cret"
NOW = 1_700_000_000.0
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def settings(**kw):
    base = {"images": {"secret": SECRET, "avif_speed": 8}}
    for k, v in kw.items():
        if isinstance(v, dict):
            base.setdefault(k, {}).update(v)
        else:
            base[k] = v
    return OptimizeSettings.model_validate(base)


@pytest.fixture
async def make_transformer():
    made = []

    def factory(**kw):
        registry = new_registry()
        t = create_transformer(settings(**kw), via="1.1 edge-1", registry=registry)
        t.registry = registry
        made.append(t)
        return t

    yield factory
    for t in made:
        await t.aclose()


@pytest.fixture
def transformer(make_transformer):
    return make_transformer()


def req(target="/js/app.js", method="GET", **fields):
    f = {k.replace("_", "-"): v for k, v in fields.items() if v is not None}
    f.setdefault("host", HOST)
    return Request(method, target, list(f.items()), f, "1.1", True, b"", "127.0.0.1")


def entry(target, body, *headers, status=200, reason="OK"):
    return build_entry(
        key=f"http://{HOST}{target}",
        host=HOST,
        req=req(target),
        status=status,
        reason=reason,
        headers=list(headers),
        body=body,
        request_time=NOW,
        response_time=NOW,
        settings=CacheSettings(),
        via="1.1 edge-1",
    )


def site_entry(rel, ctype, etag='"v1"', *extra):
    return entry(
        "/" + rel,
        (SITE / rel).read_bytes(),
        ("Content-Type", ctype),
        ("ETag", etag),
        ("Cache-Control", "max-age=60"),
        *extra,
    )


async def serve(t, e, r):
    out = t.lookup(e, r)
    if out is NEEDS_ENCODING:
        out = await t.make(e, r)
        assert out is not NEEDS_ENCODING
    return e if out is None else out


def head(resp):
    """(status, {lower name: [values]}) from the pre-serialised head."""
    lines = resp.head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        if line:
            n, _, v = line.partition(":")
            fields.setdefault(n.strip().lower(), []).append(v.strip())
    return status, fields


def decoded(resp):
    _, f = head(resp)
    coding = f.get("content-encoding", ["identity"])[0]
    return {"br": brotli.decompress, "gzip": gzip.decompress}.get(coding, lambda b: b)(resp.body)
