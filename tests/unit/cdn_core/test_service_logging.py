"""Malformed requests to aiohttp-served ports, and clients leaving mid-response, cannot
flood the log (cdn_core.service.ClientNoiseLog)."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage

from cdn_core.service import ClientNoiseLog, setup_logging


def _record(exc: BaseException | None, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(
        "aiohttp.server", level, __file__, 1, "Error handling request from %s",
        ("127.0.0.1",), (type(exc), exc, None) if exc else None,
    )  # fmt: skip


def test_one_line_a_minute_without_traceback_other_records_untouched() -> None:
    now = [1000.0]
    f = ClientNoiseLog(clock=lambda: now[0])
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
    # Below ERROR (aiohttp logs non-HTTP bytes at DEBUG): untouched, and not counted.
    debug = _record(BadHttpMessage("Invalid method"), logging.DEBUG)
    assert f.filter(debug) and debug.levelno == logging.DEBUG and debug.exc_info is not None


def test_clients_leaving_mid_response_are_throttled_on_their_own() -> None:
    now = [0.0]
    f = ClientNoiseLog(clock=lambda: now[0])
    assert f.filter(_record(BadHttpMessage("x")))
    gone = _record(ConnectionResetError("Cannot write to closing transport"))
    assert f.filter(gone) and gone.exc_info is None
    assert gone.getMessage().startswith("client closed the connection before the response")
    assert not f.filter(_record(ConnectionResetError("again")))
    now[0] = 61.0
    later = _record(ConnectionResetError("later"))
    assert f.filter(later) and "1 left out since" in later.getMessage()


def test_setup_logging_installs_the_filter_once() -> None:
    setup_logging("INFO")
    setup_logging("INFO")
    filters = logging.getLogger("aiohttp.server").filters
    assert sum(isinstance(f, ClientNoiseLog) for f in filters) == 1
