"""bench.perf.hitpath measures real hits: every request is answered with one write."""

from __future__ import annotations

import pytest

from bench.perf.hitpath import per_request_us


@pytest.mark.parametrize("kind", ["wrk", "browser"])
async def test_every_request_is_a_hit(kind: str) -> None:
    # per_request_us raises unless each request got exactly one write (a synchronous hit).
    assert await per_request_us(kind, 50, passes=1) > 0.0
