"""ResponseWriter's per-request header lines: a fresh hit's memoised Age and Cache-Status
lines (RFC 9111 5.1, RFC 9211) are the ones a fresh computation gives at every instant."""

from dataclasses import replace

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.decision import Freshness
from cdn_core.node.proxy.delivery import ResponseWriter
from cdn_core.store import StoredResponse


def _entry(freshness: Freshness) -> StoredResponse:
    return StoredResponse(
        key="http://h/a",
        host="h",
        status=200,
        reason="OK",
        headers=[],
        fields={},
        body=b"x",
        cc=parse_cache_control("max-age=100"),
        freshness=freshness,
        head=b"HTTP/1.1 200 OK\r\n",
    )


def _served(writer: ResponseWriter, entry: StoredResponse, now: float) -> bytes:
    # What the proxy's fresh-hit path sends.
    return entry.hit_lines if now < entry.hit_lines_until else writer.fresh_hit_lines(entry, now)


def _expected(writer: ResponseWriter, fr: Freshness, now: float) -> bytes:
    return writer.status_lines(fr.age(now), b"hit; ttl=%d" % int(fr.fresh_until - now))


def test_memoised_hit_lines_match_a_fresh_computation_at_every_instant() -> None:
    writer = ResponseWriter("edge1")
    # Fractional response time and initial age put the two boundaries at different points.
    fr = Freshness(freshness_lifetime=100.25, corrected_initial_age=2.3, response_time=1000.7)
    entry = _entry(fr)
    made = 0
    now = 1000.7
    while now < fr.fresh_until:
        before = entry.hit_lines_until
        got = _served(writer, entry, now)
        made += entry.hit_lines_until != before
        assert got == _expected(writer, fr, now), now
        now += 0.01
    # Made again at each of the two boundaries a second, not once per request.
    span = int(fr.fresh_until - 1000.7)
    assert 2 * span - 2 <= made <= 2 * span + 2


def test_soft_purge_drops_the_memoised_lines() -> None:
    writer = ResponseWriter("edge1")
    fr = Freshness(freshness_lifetime=100.0, corrected_initial_age=0.0, response_time=0.0)
    entry = _entry(fr)
    assert b"ttl=89" in _served(writer, entry, 10.5)
    entry.set_freshness(replace(fr, freshness_lifetime=50.0))
    assert entry.hit_lines_until == 0.0
    assert b"ttl=39" in _served(writer, entry, 10.6)


def test_status_lines_clamp_age() -> None:
    writer = ResponseWriter("mid1")
    assert writer.status_lines(-3.0, b"hit") == b"Age: 0\r\nCache-Status: mid1; hit\r\n"
    assert writer.status_lines(2.0**40, b"hit").startswith(b"Age: 2147483648\r\n")
