"""Server-side preconditions (RFC 9110 13) and byte ranges (RFC 9110 14), as pure
functions: no server, no clock."""

from __future__ import annotations

import pytest

from origin.conditional import (
    ANY,
    UNSATISFIABLE,
    ByteRange,
    EntityTag,
    Outcome,
    evaluate_preconditions,
    if_range_allows,
    parse_etag_list,
    parse_http_date,
    parse_range,
)

TAG = EntityTag('"abc"')
LM = 784_111_777  # Sun, 06 Nov 1994 08:49:37 GMT
LM_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"


def pre(method: str = "GET", **fields: str) -> Outcome:
    return evaluate_preconditions(method=method, etag=TAG, last_modified=LM, **fields)


# RFC 9110 8.8.3: entity-tag lists
def test_parse_etag_list():
    assert parse_etag_list(None) is None
    assert parse_etag_list(" * ") == ANY
    assert parse_etag_list('W/"a", "b",W/"c"') == (
        EntityTag('"a"', weak=True),
        EntityTag('"b"'),
        EntityTag('"c"', weak=True),
    )
    assert parse_etag_list('""') == (EntityTag('""'),)
    assert parse_etag_list('"a", junk, "b"') == (EntityTag('"a"'),)  # stops at junk
    assert parse_etag_list("abc") == ()


# RFC 9110 5.6.7: all three HTTP-date forms
@pytest.mark.parametrize(
    "value", [LM_DATE, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
)
def test_parse_http_date_forms(value):
    assert parse_http_date(value) == LM


@pytest.mark.parametrize("value", [None, "", "yesterday", "Sun, 99 Nov 1994 08:49:37 GMT"])
def test_parse_http_date_invalid(value):
    assert parse_http_date(value) is None


# RFC 9110 13.1.1 If-Match: strong comparison
@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        ('"abc"', Outcome.PROCEED),
        ("*", Outcome.PROCEED),
        ('"x", "abc"', Outcome.PROCEED),
        ('W/"abc"', Outcome.PRECONDITION_FAILED),
        ('"x"', Outcome.PRECONDITION_FAILED),
        ("garbage", Outcome.PRECONDITION_FAILED),
    ],
)
def test_if_match(value, outcome):
    assert pre(if_match=value) is outcome


# RFC 9110 13.1.2 If-None-Match: weak comparison; 304 for GET/HEAD, 412 otherwise
@pytest.mark.parametrize("value", ['"abc"', 'W/"abc"', '"x", W/"abc"', "*"])
def test_if_none_match_hit(value):
    assert pre(if_none_match=value) is Outcome.NOT_MODIFIED
    assert pre("HEAD", if_none_match=value) is Outcome.NOT_MODIFIED
    assert pre("PUT", if_none_match=value) is Outcome.PRECONDITION_FAILED


def test_if_none_match_miss():
    assert pre(if_none_match='"x", W/"y"') is Outcome.PROCEED


# RFC 9110 13.1.3 If-Modified-Since: only GET/HEAD, only without If-None-Match
def test_if_modified_since():
    assert pre(if_modified_since=LM_DATE) is Outcome.NOT_MODIFIED
    assert pre(if_modified_since="Sun, 06 Nov 1994 08:49:36 GMT") is Outcome.PROCEED
    assert pre(if_modified_since="nonsense") is Outcome.PROCEED
    assert pre("POST", if_modified_since=LM_DATE) is Outcome.PROCEED
    assert pre(if_none_match='"x"', if_modified_since=LM_DATE) is Outcome.PROCEED


# RFC 9110 13.1.4 If-Unmodified-Since: ignored when If-Match is present
def test_if_unmodified_since():
    earlier = "Sun, 06 Nov 1994 08:49:36 GMT"
    assert pre(if_unmodified_since=earlier) is Outcome.PRECONDITION_FAILED
    assert pre(if_unmodified_since=LM_DATE) is Outcome.PROCEED
    assert pre(if_unmodified_since="nonsense") is Outcome.PROCEED
    assert pre(if_match='"abc"', if_unmodified_since=earlier) is Outcome.PROCEED


# RFC 9110 13.2.2: order of evaluation
def test_if_match_failure_beats_not_modified():
    assert pre(if_match='"x"', if_none_match='"abc"') is Outcome.PRECONDITION_FAILED


# RFC 9110 13.1.5 If-Range
@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        (None, True),
        ('"abc"', True),
        ('W/"abc"', False),
        ('"other"', False),
        ('"abc", "x"', False),
        (LM_DATE, True),
        ("Sun, 06 Nov 1994 08:49:38 GMT", False),
        ("nonsense", False),
    ],
)
def test_if_range(value, allowed):
    assert if_range_allows(value, etag=TAG, last_modified=LM, now=LM + 10) is allowed


def test_if_range_date_needs_a_strong_last_modified():
    # Last-Modified equal to now is weak (RFC 9110 8.8.2.2): the range is not honoured.
    assert not if_range_allows(LM_DATE, etag=TAG, last_modified=LM, now=LM)


# RFC 9110 14.1.2 / 14.2: byte ranges against a 100-byte representation
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0, 100)),
        ("bytes=0-99", ByteRange(0, 99, 100)),
        ("bytes=10-", ByteRange(10, 99, 100)),
        ("bytes=90-1000", ByteRange(90, 99, 100)),
        ("bytes=-10", ByteRange(90, 99, 100)),
        ("bytes=-1000", ByteRange(0, 99, 100)),
        ("BYTES = 5 - 6", ByteRange(5, 6, 100)),
        ("bytes=100-", UNSATISFIABLE),
        ("bytes=100-200", UNSATISFIABLE),
        ("bytes=-0", UNSATISFIABLE),
        (None, None),
        ("bytes=5-4", None),
        ("bytes=-", None),
        ("bytes=0-1,4-5", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=" + "9" * 5000 + "-", None),
    ],
)
def test_parse_range(value, expected):
    assert parse_range(value, 100) == expected


def test_range_of_an_empty_representation_is_ignored():
    assert parse_range("bytes=-5", 0) is None


def test_byte_range_helpers():
    rng = ByteRange(10, 19, 100)
    assert rng.size == 10
    assert rng.content_range() == "bytes 10-19/100"
