"""Age calculation (RFC 9111 4.2.3). All values are seconds; times are seconds since the
epoch."""

from __future__ import annotations


def corrected_initial_age(
    *, age_value: float, date_value: float | None, request_time: float, response_time: float
) -> float:
    """The age a response already had when this cache received it.

    ``apparent_age = max(0, response_time - date_value)``;
    ``corrected_age_value = age_value + (response_time - request_time)``;
    result ``max(apparent_age, corrected_age_value)`` (RFC 9111 4.2.3). ``age_value`` is
    the upstream ``Age`` (0 when absent); a missing ``Date`` gives apparent age 0.
    """
    apparent = max(0.0, response_time - date_value) if date_value is not None else 0.0
    response_delay = max(0.0, response_time - request_time)
    return max(apparent, age_value + response_delay)


def current_age(*, corrected_initial_age: float, response_time: float, now: float) -> float:
    """``corrected_initial_age + (now - response_time)`` (RFC 9111 4.2.3), never negative."""
    return max(0.0, corrected_initial_age + (now - response_time))


def parse_age(value: str | None) -> float:
    """The ``Age`` field as seconds; absent or invalid gives 0 (RFC 9111 5.1: a recipient
    ignores an invalid Age; with list values the first is used)."""
    if not value:
        return 0.0
    first = value.split(",")[0].strip()
    return float(min(int(first), 2**31)) if first.isdigit() else 0.0
