"""Malformed requests to aiohttp-served ports cannot flood the log
(cdn_core.service.MalformedRequestLog)."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage

from cdn_core.service import MalformedRequestLog, setup_logging


def _record(exc: BaseException | None) -> logging.LogRecord:
    return logging.LogRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
        ("127.0.0.1",), (type(exc), exc, None) if exc else None,
    )  # fmt: skip


def test_one_line_a_minute_without_traceback_other_records_untouched() -> None:
    now = [1000.0]
    f = MalformedRequestLog(clock=lambda: now[0])
    first = _record(BadHttpMessage("Invalid header token"))
    assert f.filter(first)
    assert first.levelno == logging.WARNING and first.exc_info is None
    assert first.getMessage() == (
        "malformed request answered with 400: Invalid header token (logged at most once a "
        "minute; 0 left out since)"
    )
    for _ in range(5):
        now[0] += 1.0
        assert not f.filter(_record(BadHttpMessage("x")))
    now[0] += 60.0
    later = _record(BadHttpMessage("Too many headers received"))
    assert f.filter(later) and "5 left out since" in later.getMessage()
    other = _record(RuntimeError("a real bug"))
    assert f.filter(other) and other.levelno == logging.ERROR and other.exc_info is not None


def test_setup_logging_installs_the_filter_once() -> None:
    setup_logging("INFO")
    setup_logging("INFO")
    filters = logging.getLogger("aiohttp.server").filters
    assert sum(isinstance(f, MalformedRequestLog) for f in filters) == 1
