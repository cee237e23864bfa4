"""HTTP-date parsing and formatting (RFC 9110 5.6.7).

Parsing is strict: exactly the three forms RFC 9110 allows (IMF-fixdate, the obsolete
RFC 850 form and asctime), with ``GMT`` as the only zone. Python's ``email.utils`` accepts
much more (other zones, two-digit years, missing commas, one-digit hours...), and an
``Expires`` such lenient parsing "repairs" would make a response fresh that the origin's
intermediaries and every conforming cache treat as already expired (RFC 9111 5.3). Day and
month names are matched without regard to case, which is harmless and what origins expect.
"""

from __future__ import annotations

import calendar
import re
import time
from email.utils import formatdate

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)"
_DAY_L = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MON = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_TIME = r"(\d\d):(\d\d):(\d\d)"
_IMF = re.compile(rf"{_DAY}, (\d\d) {_MON} (\d{{4}}) {_TIME} gmt", re.I | re.A)
_RFC850 = re.compile(rf"{_DAY_L}, (\d\d)-{_MON}-(\d\d) {_TIME} gmt", re.I | re.A)
_ASCTIME = re.compile(rf"{_DAY} {_MON} ([ \d]\d) {_TIME} (\d{{4}})", re.I | re.A)


def _timestamp(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> float | None:
    # RFC 9110 5.6.7 allows second 60 (leap second); it is read as the next second.
    if not (1 <= day <= calendar.monthrange(year, month)[1] and hh < 24 and mm < 60 and ss <= 60):
        return None
    return float(calendar.timegm((year, month, day, hh, mm, ss)))


def _two_digit_year(yy: int) -> int:
    # RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the most recent
    # past year with the same last two digits. Only the obsolete RFC 850 form needs this.
    this_year = time.gmtime().tm_year
    year = this_year - this_year % 100 + yy
    if year > this_year + 50:
        year -= 100
    return year


def parse_http_date(value: str | None) -> float | None:
    """Seconds since the epoch for an HTTP-date; ``None`` when absent or invalid (RFC 9110
    5.6.7: a recipient ignores an invalid date, and RFC 9111 5.3 reads an invalid
    ``Expires`` as "already expired")."""
    if not value:
        return None
    value = value.strip()
    m = _IMF.fullmatch(value)
    if m is not None:
        day, mon, year, hh, mm, ss = m.groups()
        return _timestamp(int(year), _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss))
    m = _RFC850.fullmatch(value)
    if m is not None:
        day, mon, yy, hh, mm, ss = m.groups()
        year = _two_digit_year(int(yy))
        return _timestamp(year, _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss))
    m = _ASCTIME.fullmatch(value)
    if m is not None:
        mon, day, hh, mm, ss, year = m.groups()
        return _timestamp(
            int(year), _MONTHS[mon.lower()], int(day.strip()), int(hh), int(mm), int(ss)
        )
    return None


def format_http_date(ts: float) -> str:
    """IMF-fixdate for ``ts`` seconds since the epoch, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(ts, usegmt=True)
