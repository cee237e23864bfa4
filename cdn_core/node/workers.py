"""``--workers N``: one caching node served by N full worker processes on one port.

Each worker is a complete node (its own event loop, HTTP server, store, upstream pool and
admin port) forked from a small supervisor. The workers bind the same data port with
``SO_REUSEPORT``, so the kernel spreads incoming *connections* over them; a keep-alive
connection stays on the worker that accepted it.

Why each worker has its own store, not one shared store or per-worker key sharding:

* A hit must stay a few microseconds of work in one process. A store shared between
  processes (shared memory, or a store process) would put locking or an IPC hop on every
  hit, and Python objects cannot live in shared memory anyway.
* Consistent per-worker sharding needs the request to reach the worker that owns its key,
  but ``SO_REUSEPORT`` chooses the worker per connection, before any request is read;
  forwarding a request to its owner costs a loopback round trip plus a second parse and
  write, several times the cost of the hit itself.
* What independent stores cost is bounded: an object can be fetched once per worker (N
  fetches instead of 1), and only from the next tier, which collapses them (the mid tier
  shields the origin); the memory budget is split, ``cache.max_bytes / N`` per worker, so
  the node still keeps to the operator's budget (hot objects are held N times). nginx
  makes the opposite choice because its cache lives in files shared through the page
  cache; Varnish is one process with threads.

Per-worker settings: worker ``i`` (0-based) uses admin port ``admin + i`` (the default
admin port is ``port + 1000``, so a node on 8080 with 4 workers has admin ports
9080-9083; an ephemeral admin port stays ephemeral) and, with an on-disk tier,
``disk_path/w<i>`` with ``disk_max_bytes / N``. ``/status`` and ``/metrics`` describe one
worker each. Purges sent to one admin port reach only that worker, so a node with workers
cannot be registered with a control plane yet: that combination is refused at startup.

The supervisor forwards SIGTERM/SIGINT to the workers by PID and waits for them (SIGKILL
after a grace period); a worker that dies unexpectedly is restarted after a second, unless
it dies within its first seconds (a startup failure: the node stops and reports it).
Workers get ``PR_SET_PDEATHSIG`` so they never outlive a supervisor that was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cdn_core.errors import ConfigError
from cdn_core.node.settings.node import NodeConfig

GRACE_SECONDS = 10.0  # a worker still running this long after SIGTERM gets SIGKILL
STARTUP_SECONDS = 5.0  # a worker dying sooner than this after its start is not restarted
RESTART_DELAY = 1.0
_PR_SET_PDEATHSIG = 1


def worker_config(config: NodeConfig, index: int, count: int) -> NodeConfig:
    """The settings of worker ``index`` of ``count`` (see the module docstring)."""
    cache = config.cache
    cache_update: dict[str, object] = {"max_bytes": max(1, cache.max_bytes // count)}
    if cache.disk_path:
        cache_update["disk_path"] = str(Path(cache.disk_path) / f"w{index}")
        cache_update["disk_max_bytes"] = max(1, cache.disk_max_bytes // count)
    host, admin = config.admin_address()
    return config.model_copy(
        update={
            "cache": cache.model_copy(update=cache_update),
            "admin_host": host,
            "admin_port": admin + index if admin else 0,
        }
    )


def check(config: NodeConfig, count: int) -> None:
    """Refuse settings a multi-worker node cannot honour.

    Raises:
        ConfigError: ``count`` is below 1, or a control plane is configured with workers.
    """
    if count < 1:
        raise ConfigError(f"--workers: must be at least 1, got {count}")
    if count > 1 and config.control.url:
        raise ConfigError(
            "--workers: a node with several workers cannot be registered with a control "
            "plane yet (purges would reach one worker); use one worker per node there"
        )
    if count > 1 and config.port == 0:
        raise ConfigError("--workers: needs a fixed --port (workers share it)")


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM this worker when the supervisor dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(count: int, serve: Callable[[int], int]) -> int:
    """Fork ``count`` workers running ``serve(index)`` (which returns an exit status) and
    supervise them until SIGTERM/SIGINT; returns the node's exit status."""
    parent = os.getpid()
    workers: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    stopping: list[int] = []
    status = 0

    def spawn(index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with_parent()
                if os.getppid() != parent:  # the supervisor died before prctl
                    os._exit(1)
                code = serve(index)
            except BaseException as exc:  # noqa: BLE001 - report, then leave the child
                print(f"worker {index} failed: {exc!r}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        workers[pid] = (index, time.monotonic())

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i in range(count):
            spawn(i)
        deadline: float | None = None
        restarts: list[tuple[float, int]] = []  # (when, index)
        while workers:
            pid, wstatus = os.waitpid(-1, os.WNOHANG)
            now = time.monotonic()
            if pid:
                index, started = workers.pop(pid)
                code = os.waitstatus_to_exitcode(wstatus)
                if stopping:
                    continue
                if now - started < STARTUP_SECONDS:
                    # Failed to start (bad config, port in use...): stop the node.
                    status = code if code > 0 else 1
                    forward(signal.SIGTERM, None)
                    continue
                print(
                    f"worker {index} (pid {pid}) exited with {code}; restarting",
                    file=sys.stderr,
                    flush=True,
                )
                restarts.append((now + RESTART_DELAY, index))
                continue
            if stopping and deadline is None:
                deadline = now + GRACE_SECONDS
                restarts.clear()
            if deadline is not None and now > deadline:
                for p in list(workers):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
            for item in [r for r in restarts if r[0] <= now]:
                restarts.remove(item)
                spawn(item[1])
            time.sleep(0.05)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return status


def serve_workers(config: NodeConfig, count: int, *, log_level: str = "INFO") -> int:
    """Run the node as ``count`` workers (see the module docstring); the exit status is
    that of :func:`cdn_core.service.run_service` (2 for bad settings)."""
    from cdn_core.node.app import Node
    from cdn_core.service import config_error_exit, run_service

    try:
        check(config, count)
    except ConfigError as exc:
        return config_error_exit(exc)

    def serve(index: int) -> int:
        cfg = worker_config(config, index, count)

        async def run(stop: asyncio.Event) -> None:
            node = Node(cfg, reuse_port=True)
            await node.start()
            try:
                await stop.wait()
            finally:
                await node.stop()

        return run_service(run, log_level=log_level, gc_full_interval=cfg.gc_full_interval)

    return supervise(count, serve)
