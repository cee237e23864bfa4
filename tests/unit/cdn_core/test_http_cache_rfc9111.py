"""RFC 9111 core logic, one test per rule, named by section. Pure: no event loop, no sleeps."""

from cdn_core.http_cache.age import corrected_initial_age, current_age, parse_age
from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.conditional import evaluate, strong_match, weak_match
from cdn_core.http_cache.dates import format_http_date
from cdn_core.http_cache.decision import Action, Freshness, decide, may_serve_stale_on_error
from cdn_core.http_cache.freshness import freshness_lifetime
from cdn_core.http_cache.ranges import UNSATISFIABLE, if_range_allows, parse_range
from cdn_core.http_cache.storability import storable
from cdn_core.http_cache.vary import accepted_codings, secondary_key, vary_fields

NOW = 1_700_000_000.0
CC = parse_cache_control


def life(cc: str, fields=None, status=200, date=NOW):
    fields = dict(fields or {})
    return freshness_lifetime(status, fields, CC(cc), date_value=date)


# 4.2.1 Calculating freshness lifetime
def test_4_2_1_s_maxage_over_max_age_over_expires():
    expires = {"expires": format_http_date(NOW + 500)}
    assert life("max-age=60, s-maxage=120", expires) == 120
    assert life("max-age=60", expires) == 60
    assert life("", expires) == 500


def test_4_2_1_invalid_expires_means_expired():
    assert life("", {"expires": "0"}) == 0


def test_4_2_1_conflicting_duplicate_max_age_is_stale():
    assert life("max-age=60, max-age=120") == 0
    assert life("max-age=60, max-age=60") == 60


def test_5_2_quoted_and_invalid_delta_seconds():
    assert CC('max-age="30"').max_age == 30
    assert CC("max-age=abc").max_age == 0
    assert CC("MAX-AGE=5").max_age == 5


# 4.2.2 Heuristic freshness
def test_4_2_2_heuristic_ten_percent_of_last_modified_age():
    fields = {"last-modified": format_http_date(NOW - 1000)}
    assert life("", fields) == 100


def test_4_2_2_heuristic_capped_and_only_for_heuristically_cacheable_status():
    fields = {"last-modified": format_http_date(NOW - 10_000_000)}
    assert life("", fields) == 86_400
    assert life("", fields, status=302) == 0


# 4.2.3 Calculating age
def test_4_2_3_corrected_initial_age_uses_upstream_age_plus_delay():
    a = corrected_initial_age(age_value=30, date_value=NOW, request_time=NOW, response_time=NOW + 2)
    assert a == 32
    assert current_age(corrected_initial_age=a, response_time=NOW + 2, now=NOW + 12) == 42


def test_4_2_3_apparent_age_wins_when_larger():
    a = corrected_initial_age(age_value=0, date_value=NOW - 50, request_time=NOW, response_time=NOW)
    assert a == 50


def test_5_1_invalid_age_ignored():
    assert parse_age("abc") == 0 and parse_age("12") == 12 and parse_age(None) == 0


# 3 Storing responses
def _storable(req=None, resp=None, status=200, method="GET"):
    req, resp = dict(req or {}), dict(resp or {})
    return storable(
        method=method,
        status=status,
        request_fields=req,
        request_cc=CC(req.get("cache-control")),
        response_fields=resp,
        response_cc=CC(resp.get("cache-control")),
    )


def test_3_no_store_and_private_not_stored():
    assert _storable(resp={"cache-control": "no-store, max-age=60"}) == (False, "no-store")
    assert _storable(resp={"cache-control": "private, max-age=60"}) == (False, "private")
    assert (
        _storable(req={"cache-control": "no-store"}, resp={"cache-control": "max-age=9"})[0]
        is False
    )


def test_3_methods_and_partial_content():
    assert _storable(resp={"cache-control": "max-age=60"}, method="POST")[0] is False
    assert _storable(resp={"cache-control": "max-age=60"}, status=206)[0] is False


def test_3_5_authorization_needs_public_s_maxage_or_must_revalidate():
    req = {"authorization": "Bearer x"}
    assert _storable(req, {"cache-control": "max-age=60"}) == (False, "authorization")
    assert _storable(req, {"cache-control": "public, max-age=60"})[0] is True
    assert _storable(req, {"cache-control": "s-maxage=60"})[0] is True


def test_4_1_vary_star_never_stored():
    assert _storable(resp={"cache-control": "max-age=60", "vary": "*"})[0] is False


# 4.1 Secondary keys
def test_4_1_accept_encoding_normalised():
    assert secondary_key(("accept-encoding",), {"accept-encoding": "gzip, br"}) == secondary_key(
        ("accept-encoding",), {"accept-encoding": "br,gzip;q=0.5"}
    )
    assert accepted_codings("br;q=0, gzip") == {"gzip"}
    assert "br" in accepted_codings("*")
    assert vary_fields("*") is None and vary_fields("Accept-Encoding, accept-encoding") == (
        "accept-encoding",
    )


# 4.2.4 / 5.2 decisions
def meta(lifetime, age_at_store=0.0, stored=NOW):
    return Freshness(lifetime, age_at_store, stored)


def test_4_2_fresh_hit_and_stale_revalidates():
    assert decide(meta(60), CC("max-age=60"), CC(None), NOW + 30).action is Action.FRESH
    assert decide(meta(60), CC("max-age=60"), CC(None), NOW + 61).action is Action.REVALIDATE


def test_5_2_1_request_directives():
    m, r = meta(60), CC("max-age=60")
    assert decide(m, r, CC("no-cache"), NOW + 1).action is Action.REVALIDATE
    assert decide(m, r, CC("max-age=5"), NOW + 10).action is Action.REVALIDATE
    assert decide(m, r, CC("min-fresh=55"), NOW + 10).action is Action.REVALIDATE
    assert decide(m, r, CC("max-stale=100"), NOW + 100).action is Action.STALE_OK
    assert decide(m, r, CC("max-stale"), NOW + 10_000).action is Action.STALE_OK
    assert decide(m, r, CC(None), NOW + 1, pragma_no_cache=True).action is Action.REVALIDATE


def test_5_2_2_4_response_no_cache_always_revalidates():
    assert decide(meta(60), CC("no-cache, max-age=60"), CC(None), NOW).action is Action.REVALIDATE


def test_5_2_2_2_must_revalidate_forbids_max_stale():
    assert decide(meta(5), CC("max-age=5, must-revalidate"), CC("max-stale"), NOW + 9).action is (
        Action.REVALIDATE
    )


def test_rfc5861_3_stale_while_revalidate_window():
    r = CC("max-age=10, stale-while-revalidate=30")
    assert decide(meta(10), r, CC(None), NOW + 20).action is Action.STALE_WHILE_REVALIDATE
    assert decide(meta(10), r, CC(None), NOW + 50).action is Action.REVALIDATE


def test_rfc5861_4_stale_if_error_and_must_revalidate():
    m = meta(5)
    assert may_serve_stale_on_error(m, CC("max-age=5, stale-if-error=600"), CC(None), NOW + 6)
    assert not may_serve_stale_on_error(m, CC("max-age=5, stale-if-error=600"), CC(None), NOW + 700)
    assert not may_serve_stale_on_error(
        m, CC("max-age=5, must-revalidate"), CC(None), NOW + 6, failover_window=1000
    )
    assert may_serve_stale_on_error(m, CC("max-age=5"), CC(None), NOW + 6, failover_window=100)


# RFC 9110 13 conditional requests answered from cache
def test_rfc9110_13_1_2_if_none_match_weak_comparison():
    assert evaluate("GET", {"if-none-match": 'W/"a"'}, etag='"a"', last_modified=None) == 304
    assert evaluate("GET", {"if-none-match": '"b", "a"'}, etag='"a"', last_modified=None) == 304
    assert evaluate("GET", {"if-none-match": "*"}, etag='"a"', last_modified=None) == 304
    assert evaluate("GET", {"if-none-match": '"b"'}, etag='"a"', last_modified=None) is None
    assert weak_match('W/"x"', '"x"') and not strong_match('W/"x"', '"x"')


def test_rfc9110_13_1_3_if_modified_since_only_without_if_none_match():
    lm = format_http_date(NOW - 100)
    assert (
        evaluate("GET", {"if-modified-since": format_http_date(NOW)}, etag=None, last_modified=lm)
        == 304
    )
    assert (
        evaluate(
            "GET",
            {"if-modified-since": format_http_date(NOW), "if-none-match": '"z"'},
            etag='"a"',
            last_modified=lm,
        )
        is None
    )


def test_rfc9110_13_1_1_if_match_strong():
    assert evaluate("GET", {"if-match": '"b"'}, etag='"a"', last_modified=None) == 412
    assert evaluate("GET", {"if-match": 'W/"a"'}, etag='"a"', last_modified=None) == 412


# RFC 9110 14 ranges
def test_rfc9110_14_1_2_ranges():
    assert parse_range("bytes=0-499", 1000) == [(0, 499)]
    assert parse_range("bytes=-100", 1000) == [(900, 999)]
    assert parse_range("bytes=900-", 1000) == [(900, 999)]
    assert parse_range("bytes=5000-", 1000) == UNSATISFIABLE
    assert parse_range("items=0-1", 1000) is None
    assert parse_range("bytes=5-1", 1000) is None


def test_rfc9110_13_1_5_if_range():
    assert if_range_allows({"if-range": '"a"'}, etag='"a"', last_modified=None)
    assert not if_range_allows({"if-range": '"b"'}, etag='"a"', last_modified=None)
    assert not if_range_allows({"if-range": 'W/"a"'}, etag='W/"a"', last_modified=None)
