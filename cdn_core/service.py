"""Running a service process: uvloop, signal handling, binding errors, admin sites.

Every ``python -m <service>`` entry point calls :func:`run_service`, so every service
stops the same way on SIGTERM/SIGINT and reports bad configuration the same way: one line
on stderr naming the file and field (or the address already in use), exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from cdn_core.errors import ConfigError, StartupError
from cdn_core.gc_schedule import GcSchedule
from cdn_core.version import package_version
from cdn_core.web_errors import QuietAppRunner

log = logging.getLogger("cdn.service")

EXIT_CONFIG = 2


def add_common_args(parser: argparse.ArgumentParser, *, admin: bool = True) -> None:
    """Flags every service accepts; each overrides the same field of its config file."""
    parser.add_argument("--config", help="YAML config file (flags override it)")
    parser.add_argument("--name", help="node name (appears in Cache-Status, Via, metrics)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on")
    if admin:
        parser.add_argument("--admin-host", help="admin address (default: --host)")
        parser.add_argument(
            "--admin-port", type=int, help="admin port for /healthz /status /metrics"
        )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s (tiered-cdn) {package_version()}")


RESTARTS_ENV = "CDN_RESTARTS"
"""Set by ``cdnctl up``'s supervisor: how many times it has restarted this process."""


def supervised_restarts() -> int:
    """This process's restart count from its supervisor (:data:`RESTARTS_ENV`; 0 when it
    is not supervised or the value is unusable), for ``/status``."""
    try:
        return max(0, int(os.environ.get(RESTARTS_ENV, "0")))
    except ValueError:
        return 0


def bind_error(host: str, port: int, exc: OSError) -> StartupError:
    """Translate a bind failure into a :class:`StartupError` that names the address."""
    if exc.errno == errno.EADDRINUSE:
        why = "address already in use"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "address not available on this host"
    elif exc.errno == errno.EACCES:
        why = "permission denied"
    else:
        why = exc.strerror or str(exc)
    return StartupError(f"cannot listen on {host}:{port}: {why}")


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start an aiohttp app on ``host:port``; returns the runner (call ``cleanup()``).
    Requests it cannot parse get JSON errors that never quote them
    (:mod:`cdn_core.web_errors`).

    Raises:
        StartupError: the address cannot be bound.
    """
    runner = QuietAppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise bind_error(host, port, exc) from exc
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port an aiohttp runner actually listens on (useful with port 0)."""
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            return int(addr[1])
    raise RuntimeError("runner has no TCP address")


class ClientNoiseLog(logging.Filter):
    """Filter for aiohttp's ``aiohttp.server`` logger. aiohttp logs, at ERROR with a
    traceback, each malformed request it answers with 400 and each client that closed its
    connection before the response was written: anyone sending garbage, or many clients
    giving up, would turn that into a log flood. Each kind becomes one WARNING line per
    ``interval`` seconds, counting the ones left out; every other record (and anything
    below ERROR) passes unchanged."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.ERROR:
            return True
        if isinstance(exc, HttpProcessingError):
            kind = "malformed"
            # aiohttp's message may go on with a picture of the bad bytes: one line is
            # enough.
            detail = (exc.message.strip().splitlines() or ["malformed request"])[0]
            text = f"malformed request answered with {exc.code}: {detail.rstrip(':')}"
        elif isinstance(exc, ConnectionError):
            kind = "gone"
            text = f"client closed the connection before the response was written ({exc})"
        else:
            return True
        now = self.clock()
        if now - self._last.get(kind, float("-inf")) < self.interval:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return False
        self._last[kind] = now
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "%s (logged at most once a minute; %d left out since)"
        record.args = (text, self._left_out.pop(kind, 0))
        record.exc_info = record.exc_text = None
        return True


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientNoiseLog) for f in server_log.filters):
        server_log.addFilter(ClientNoiseLog())


def run_service(
    main: Callable[[asyncio.Event], Awaitable[None]],
    *,
    log_level: str = "INFO",
    gc_full_interval: float = 0.0,
) -> int:
    """Run ``main(stop_event)`` on uvloop until it returns; SIGTERM/SIGINT set the event.

    ``gc_full_interval`` (seconds; 0: CPython's own rule) schedules the process's full
    garbage collections (:class:`cdn_core.gc_schedule.GcSchedule`, which also records
    every collection's pause). Returns the process exit status: 0 on a clean stop, 2 on
    :class:`ConfigError` or :class:`StartupError` (printed as one line on stderr).
    """
    import uvloop

    setup_logging(log_level)

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        schedule = GcSchedule(gc_full_interval)
        schedule.install(loop)
        try:
            await main(stop)
        finally:
            schedule.uninstall()

    try:
        uvloop.run(wrapper())
    except (ConfigError, StartupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def config_error_exit(exc: ConfigError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_CONFIG
