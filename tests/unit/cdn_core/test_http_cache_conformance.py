"""Edge cases of the pure caching core that a conforming shared cache must get right, named
by the RFC section each checks. Pure: no event loop, no sleeps.

These complement test_http_cache_rfc9111.py with the parsing corner cases (dates,
directive syntax, targeted fields) and the storability rules for status codes.
"""

import pytest

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.dates import parse_http_date
from cdn_core.http_cache.decision import Freshness, may_serve_stale_on_error
from cdn_core.http_cache.freshness import freshness_lifetime
from cdn_core.http_cache.storability import storable
from cdn_core.http_cache.targeted import parse_surrogate_control, parse_targeted
from cdn_core.http_cache.vary import secondary_key

NOW = 1_700_000_000.0
CC = parse_cache_control
# 2050-08-18T02:01:18Z, the instant every valid form below names.
AUG_2050 = 2_544_400_878.0


# RFC 9110 5.6.7: the three HTTP-date forms are accepted, anything else is invalid.
@pytest.mark.parametrize(
    "value",
    [
        "Thu, 18 Aug 2050 02:01:18 GMT",  # IMF-fixdate
        "Thursday, 18-Aug-50 02:01:18 GMT",  # obsolete RFC 850 form
        "Thu Aug 18 02:01:18 2050",  # asctime
        "THU, 18 AUG 2050 02:01:18 gmt",  # names matched without regard to case
    ],
)
def test_rfc9110_5_6_7_http_date_forms_accepted(value):
    assert parse_http_date(value) == AUG_2050


def test_rfc9110_5_6_7_asctime_single_digit_day_is_space_padded():
    assert parse_http_date("Thu Aug  8 02:01:18 2050") == AUG_2050 - 10 * 86_400


@pytest.mark.parametrize(
    "value",
    [
        "Thu, 18 Aug 2050 02:01:18 UTC",  # only GMT is allowed
        "Thu, 18 Aug 2050 02:01:18 AEST",
        "Thu, 18 Aug 50 02:01:18 GMT",  # two-digit year in the IMF form
        "Thu 18 Aug 2050 02:01:18 GMT",  # comma missing
        "Thu, 18  Aug  2050 02:01:18 GMT",  # extra spaces
        "Thu, 18-Aug-2050 02:01:18 GMT",  # dashes in the IMF form
        "Thu, 18 Aug 2050 02.01.18 GMT",
        "Thu, 18 Aug 2050 2:01:18 GMT",  # one-digit hour
        "Thu, 18 Aug 2050 02:01:18 GMT, Thu, 18 Aug 2050 02:01:19 GMT",  # two lines
        "Thu, 31 Feb 2050 02:01:18 GMT",  # no such day
        "0",
        "",
    ],
)
def test_rfc9110_5_6_7_malformed_http_dates_are_invalid(value):
    assert parse_http_date(value) is None


def test_rfc9111_5_3_malformed_expires_means_already_expired():
    fields = {"expires": "Thu, 18 Aug 2050 02:01:18 UTC"}
    assert freshness_lifetime(200, fields, CC(None), date_value=NOW) == 0
    fields = {"expires": "Thu, 18 Aug 2050 02:01:18 GMT"}
    assert freshness_lifetime(200, fields, CC(None), date_value=NOW) == AUG_2050 - NOW


# RFC 9111 5.2 / 1.2.2: directive syntax is token "=" value, with no whitespace around "=".
def test_rfc9111_5_2_whitespace_around_equals_makes_delta_invalid():
    assert CC("max-age =3600").max_age == 0
    assert CC("max-age= 3600").max_age == 0
    assert CC("max-age=003600").max_age == 3600
    assert CC('extension="max-age=3600", max-age=1').max_age == 1
    assert CC("max-age='3600'").max_age == 0


# RFC 9213 2.1: targeted fields are Structured Field Dictionaries.
def test_rfc9213_2_1_targeted_field_parsed_as_dictionary():
    cc = parse_targeted("max-age=3600, stale-while-revalidate=30, foobar")
    assert cc is not None and cc.max_age == 3600 and cc.stale_while_revalidate == 30
    assert parse_targeted("max-age=99999999999").max_age == 2**31
    cc = parse_targeted('private, no-cache="set-cookie"')
    assert cc.private and cc.no_cache_fields == {"set-cookie"}
    assert parse_targeted("no-store=?0").no_store is False


@pytest.mark.parametrize(
    "value",
    ["max-age=10000, &&&&&", "max-age =100", "max-age= 100", "MaX-aGe=3600", "max-age=1,", ""],
)
def test_rfc9213_2_1_targeted_field_that_is_not_a_dictionary_is_ignored(value):
    assert parse_targeted(value) is None


def test_rfc9213_2_1_directive_value_of_wrong_type_is_ignored():
    cc = parse_targeted('max-age="10000"')
    assert cc is not None and cc.max_age is None
    assert parse_targeted("max-age=-5").max_age is None
    assert parse_targeted("max-age=1.5").max_age is None


# Surrogate-Control (W3C Edge Architecture 1.0), when an operator lists it as targeted.
def test_surrogate_control_untargeted_directives_apply():
    cc = parse_surrogate_control("max-age=3600, foobar")
    assert cc is not None and cc.max_age == 3600
    assert parse_surrogate_control("MaX-aGe=60").max_age == 60
    assert parse_surrogate_control("no-store").no_store


def test_surrogate_control_directives_for_other_devices_are_ignored():
    assert parse_surrogate_control("max-age=3600;other-device") is None
    cc = parse_surrogate_control("max-age=3600;other-device, no-store")
    assert cc is not None and cc.no_store and cc.max_age is None


# RFC 9111 4.1: an absent field only matches an absent field.
def test_rfc9111_4_1_absent_field_differs_from_empty_field():
    names = ("foo",)
    assert secondary_key(names, {}) != secondary_key(names, {"foo": ""})
    assert secondary_key(("accept-encoding",), {}) != secondary_key(
        ("accept-encoding",), {"accept-encoding": ""}
    )


def test_rfc9111_4_1_whitespace_around_list_commas_is_not_significant():
    names = ("foo",)
    assert secondary_key(names, {"foo": "1,2"}) == secondary_key(names, {"foo": " 1, 2 "})
    assert secondary_key(names, {"foo": "1, 2"}) != secondary_key(names, {"foo": "12"})


# RFC 9111 3: any final status may be stored given explicit freshness; 206/304 are not.
def _storable(status, cc, req_cc=None):
    return storable(
        method="GET",
        status=status,
        request_fields={},
        request_cc=CC(req_cc),
        response_fields={"cache-control": cc},
        response_cc=CC(cc),
    )


@pytest.mark.parametrize("status", [200, 299, 403, 451, 499])
def test_rfc9111_3_final_status_with_explicit_freshness_is_storable(status):
    assert _storable(status, "max-age=60") == (True, "")


@pytest.mark.parametrize("status", [400, 413, 414, 431])
def test_client_caused_errors_are_never_stored_whatever_their_freshness(status):
    # Policy against cache-poisoned denial of service (issue 12): one client's bad
    # request must not answer everyone.
    assert _storable(status, "max-age=60") == (False, "client-error")


@pytest.mark.parametrize("status", [201, 202, 403, 599])
def test_rfc9111_4_2_2_no_heuristics_for_other_status_codes(status):
    assert _storable(status, "")[0] is False


def test_rfc9111_3_partial_and_not_modified_are_never_stored_whole():
    assert _storable(206, "max-age=60")[0] is False
    assert _storable(304, "max-age=60")[0] is False


def test_rfc9111_3_server_errors_are_not_stored_by_policy():
    # A stored 200 must never be replaced by an error (RFC 5861 4, field case H02).
    for status in (500, 502, 503, 504, 599):
        assert _storable(status, "max-age=60") == (False, "status")


# RFC 9111 5.2.2.3: must-understand.
def test_rfc9111_5_2_2_3_must_understand_overrides_no_store_for_known_status():
    assert _storable(200, "max-age=60, no-store, must-understand") == (True, "")
    assert _storable(299, "max-age=60, no-store, must-understand")[0] is False
    assert _storable(299, "max-age=60, must-understand")[0] is False
    # The request's no-store still wins.
    assert _storable(200, "max-age=60, no-store, must-understand", "no-store")[0] is False


# RFC 9111 5.2.2.4: no-cache means never without successful validation, errors included.
def test_rfc9111_5_2_2_4_no_cache_response_never_served_on_error():
    fresh = Freshness(3600, 0, NOW)
    assert not may_serve_stale_on_error(
        fresh, CC("max-age=3600, no-cache"), CC(None), NOW + 1, failover_window=1e9
    )
    assert may_serve_stale_on_error(fresh, CC("max-age=3600"), CC(None), NOW + 1)
