"""HTTP-date parsing and formatting (RFC 9110 5.6.7)."""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime


def parse_http_date(value: str | None) -> float | None:
    """Seconds since the epoch for an HTTP-date (IMF-fixdate, RFC 850 or asctime form);
    ``None`` when absent or invalid (RFC 9110 5.6.7: invalid dates are ignored)."""
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return dt.timestamp()


def format_http_date(ts: float) -> str:
    """IMF-fixdate for ``ts`` seconds since the epoch, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(ts, usegmt=True)
