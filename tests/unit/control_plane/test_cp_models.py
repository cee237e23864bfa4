"""Purge target validation and record shapes (control_plane.models)."""

from __future__ import annotations

import pytest

from control_plane.models import Ack, Purge, check_target, is_hostname, is_http_url, rfc3339


@pytest.mark.parametrize(
    "value",
    ["http://www.example.test/index.html", "https://a.b/", "HTTP://x:8080/p?q=1"],
)
def test_http_urls_accepted(value: str) -> None:
    assert is_http_url(value)


@pytest.mark.parametrize(
    "value",
    [
        "/index.html",
        "www.example.test/x",
        "ftp://a/b",
        "http:///x",
        "http://a b/",
        "http://a:99999/",
    ],
)
def test_non_http_urls_rejected(value: str) -> None:
    assert not is_http_url(value)


@pytest.mark.parametrize("value", ["www.example.test", "a", "127.0.1.1", "x-y.test."])
def test_hostnames_accepted(value: str) -> None:
    assert is_hostname(value)


@pytest.mark.parametrize("value", ["", "-a.test", "a-.test", "a..b", "a b", "a_b", "x" * 64])
def test_bad_hostnames_rejected(value: str) -> None:
    assert not is_hostname(value)


def test_check_target_normalises_and_rejects() -> None:
    assert check_target("host", "WWW.Example.Test.") == "www.example.test"
    assert check_target("all", None) is None
    assert check_target("tag", "product-42") == "product-42"
    for kind, value in [("url", None), ("all", "x"), ("prefix", "/a"), ("tag", "a\tb")]:
        with pytest.raises(ValueError):
            check_target(kind, value)  # type: ignore[arg-type]


def test_rfc3339() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(None) is None


def _ack(state: str) -> Ack:
    return Ack("n", "edge", state, None, None, None, 0)  # type: ignore[arg-type]


def test_purge_state() -> None:
    base = Purge("id", 1, "all", None, False, 1.0, None, (_ack("acked"), _ack("pending")))
    assert base.state == "pending"
    failed = Purge("id", 1, "all", None, False, 1.0, None, (_ack("acked"), _ack("failed")))
    assert failed.state == "partial"
    done = Purge("id", 1, "all", None, False, 1.0, 2.0, (_ack("acked"),))
    assert done.state == "complete"
    assert done.to_json()["completed_at"] == "1970-01-01T00:00:02.000Z"
