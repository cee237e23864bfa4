"""Token buckets, rate-limit policies and the purge watermark of a node (issue 8): pure
logic, no sockets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cdn_core.clock import ManualClock
from cdn_core.node.control.sync import NodeSync
from cdn_core.node.policy.buckets import LocalBuckets
from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy
from cdn_core.node.settings.control import ControlSettings
from cdn_core.store import PurgeSelector


def test_bucket_refills_at_rate_up_to_capacity() -> None:
    b = LocalBuckets()
    assert [b.take("k", 1.0, 2, 0.0).allowed for _ in range(3)] == [True, True, False]
    refused = b.take("k", 1.0, 2, 0.0)
    assert refused.retry_after == pytest.approx(1.0) and refused.remaining == 0
    assert b.take("k", 1.0, 2, 1.0).allowed
    assert b.take("k", 1.0, 2, 100.0).remaining == 1  # capped at capacity, minus one
    assert b.take("other", 1.0, 2, 0.0).allowed  # independent keys


def test_bucket_count_is_bounded_lru() -> None:
    b = LocalBuckets(max_buckets=2)
    b.take("a", 1, 1, 0)
    b.take("b", 1, 1, 0)
    b.take("a", 1, 1, 0)  # a is now the most recent
    b.take("c", 1, 1, 0)  # evicts b
    assert len(b) == 2
    assert b.take("b", 1, 1, 0).allowed  # b starts full again
    assert not b.take("c", 1, 1, 0).allowed


def test_policy_normalises_and_rejects() -> None:
    p = RateLimitPolicy(
        name="x", limit=10, window=5, host="WWW.Example.Test.", api_key_header="X-Key"
    )
    assert p.host == "www.example.test" and p.api_key_header == "x-key" and p.rate == 2.0
    for bad in ({"limit": 0}, {"window": 0}, {"path_prefix": "a"}, {"host": "a:80"}, {"x": 1}):
        with pytest.raises(ValidationError):
            RateLimitPolicy.model_validate({"name": "x", "limit": 1, "window": 1, **bad})


def _sync() -> tuple[NodeSync, list[PurgeSelector]]:
    applied: list[PurgeSelector] = []

    def purge(sel: PurgeSelector) -> int:
        applied.append(sel)
        return 1

    sync = NodeSync(
        ControlSettings(),
        name="e",
        tier="edge",
        clock=ManualClock(),
        purge=purge,
        selector=lambda body: PurgeSelector(body["type"], body.get("value") or ""),
    )
    return sync, applied


def test_watermark_advances_only_over_contiguous_pushes() -> None:
    sync, _ = _sync()
    sync.note_applied(5)  # unknown watermark: ignored
    assert sync.watermark is None
    sync.watermark = 3
    sync.note_applied(5)
    assert sync.watermark == 3  # 4 is missing
    sync.note_applied(4)
    assert sync.watermark == 5
    sync.note_applied(True)
    sync.note_applied("6")
    assert sync.watermark == 5


async def test_unreachable_control_plane_soft_purges_stored_content() -> None:
    sync, applied = _sync()
    await sync.before_serving(has_content=True)
    assert applied == []  # no control plane configured: nothing to have missed
    sync.settings = ControlSettings(url="http://127.0.0.1:1", startup_sync_timeout=0.5)
    sync.watermark = 7
    await sync.open(None)
    try:
        sync.set_address("127.0.0.1", 8080, "http://127.0.0.1:9080")
        await sync.before_serving(has_content=True)
    finally:
        await sync.stop()
    assert applied == [PurgeSelector("all", "", True)] and sync.watermark is None
