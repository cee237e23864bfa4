"""API key hashing and lookup, credentials in requests, sitemap parsing and the 429 head
(issue 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_core.errors import StartupError
from cdn_core.node.policy.buckets import verdict
from cdn_core.node.policy.ratelimit import _rule, too_many_requests
from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy
from control_plane.auth import Authenticator, make_key, read_secret_file, write_secret_file
from control_plane.config import AuthConfig
from control_plane.models import ApiKey
from control_plane.push import PushError, parse_sitemap


def test_keys_are_checked_by_salted_hash(tmp_path: Path) -> None:
    key_id, text, salt, digest = make_key()
    assert text.startswith(f"cdn_{key_id}.") and len(digest) == 32
    auth = Authenticator()
    (tmp_path / "a").write_text("boot\n")
    auth.configure(AuthConfig(admin_key_file=str(tmp_path / "a"), node_token="tok"), environ={})
    auth.load([ApiKey(key_id, "n", "reader", salt, digest, 1.0, None)])
    who = auth.authenticate(text)
    assert who is not None and who.role == "reader" and who.key_id == key_id
    assert auth.authenticate(text + "x") is None
    assert auth.authenticate("boot").role == "admin"  # type: ignore[union-attr]
    assert auth.authenticate("tok").role == "node"  # type: ignore[union-attr]
    auth.remember(ApiKey(key_id, "n", "reader", salt, digest, 1.0, 2.0))
    assert auth.authenticate(text) is None  # revoked


def test_secret_files(tmp_path: Path) -> None:
    path = tmp_path / "d" / "s.key"
    first = write_secret_file(path)
    assert write_secret_file(path) == first and len(first) >= 40
    assert read_secret_file(str(path), "x") == first
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(StartupError, match="empty"):
        read_secret_file(str(tmp_path / "empty"), "admin key")


def test_parse_sitemap() -> None:
    kind, locs = parse_sitemap(
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc> http://a/x </loc></url><url><loc>http://a/y</loc></url></urlset>"
    )
    assert kind == "urlset" and locs == ["http://a/x", "http://a/y"]
    assert (
        parse_sitemap(b"<sitemapindex><sitemap><loc>http://a/s.xml</loc></sitemap></sitemapindex>")[
            0
        ]
        == "sitemapindex"
    )
    for bad in (b"<html>", b"<feed/>"):
        with pytest.raises(PushError):
            parse_sitemap(bad)


def test_429_head_follows_the_draft() -> None:
    p = RateLimitPolicy(name="api", limit=10, window=60)
    r = _rule(p, cluster=False)
    refused = verdict(False, 0.25, p.rate, 10.0)
    head, body = too_many_requests([(r, refused)], [(r, refused)])
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b'RateLimit-Policy: "api";q=10;w=60\r\n' in head
    assert b'RateLimit: "api";r=0;t=5\r\n' in head  # (1 - 0.25) / (10/60) = 4.5 -> 5
    assert b"Retry-After: 5\r\n" in head and head.endswith(b"\r\n")
    assert b"Content-Length: %d" % len(body) in head
