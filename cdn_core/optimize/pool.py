"""A bounded worker pool for encoders, with single-flight per variant key.

Threads, not processes: zlib, brotli and Pillow (JPEG/PNG/GIF decoding, resampling,
the WebP and AVIF encoders) release the GIL around their C work, so encodes run in
parallel with each other and the event loop keeps serving. Measured on the 2-core dev
host with ``python -m bench.optimize.gil_check``: while a worker thread looped on
brotli q9 (10 ms a call), a 1920 px Lanczos resize (50 ms), WebP (230 ms) or AVIF
(1.7 s) encodes, the loop thread's 1 ms sleeps woke late by 0.07 ms at the median and
5 ms at p99 (the interpreter's switch interval, for the Python between calls), never
by the length of a call. Threads also share the body bytes without copying or pickling
them. AVIF runs with one libavif thread per job, so ``workers`` bounds the CPU used.

Bounded: at most ``max_pending`` distinct jobs queued or running; beyond that
:meth:`EncodePool.run` raises :class:`PoolBusy` at once and the caller sends the identity
instead of queueing without limit. Single-flight: concurrent calls with one key share the
job, so N requests for one variant encode it once. A caller that is cancelled (client
gone) does not cancel the shared job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cdn_core.errors import CdnError

T = TypeVar("T")


class PoolBusy(CdnError):
    """The pool has ``max_pending`` jobs already; the caller should not wait."""


class PoolClosed(CdnError):
    """The pool was closed."""


class EncodePool:
    """``ThreadPoolExecutor`` with a bound on pending jobs and single-flight per key.

    Owned by the service's lifecycle: create it at startup, ``close()`` at shutdown.
    """

    def __init__(self, workers: int, max_pending: int) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cdn-optimize")
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._closed = False
        self.jobs_started = 0
        self.jobs_joined = 0

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return len(self._inflight)

    def busy(self, key: Hashable) -> bool:
        """True when :meth:`run` for ``key`` would raise :class:`PoolBusy`."""
        return key not in self._inflight and len(self._inflight) >= self.max_pending

    async def run(
        self,
        key: Hashable,
        fn: Callable[[], T],
        on_result: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn`` in a worker thread, once for all concurrent callers with ``key``.

        ``on_result`` (optional) is called once, on the event loop, with the result
        before any caller resumes, even when every caller has been cancelled: the place
        to cache what the job made.

        Raises:
            PoolBusy: ``max_pending`` other jobs are pending.
            PoolClosed: the pool is closed.
            Exception: whatever ``fn`` raised (for every caller of the job).
        """
        fut = self._inflight.get(key)
        if fut is not None:
            self.jobs_joined += 1
            return await asyncio.shield(fut)  # type: ignore[no-any-return,unused-ignore]
        if self._closed:
            raise PoolClosed("the encoder pool is closed")
        if len(self._inflight) >= self.max_pending:
            raise PoolBusy(f"{self.max_pending} encodes pending")
        loop = asyncio.get_running_loop()
        self.jobs_started += 1
        cfut = self._executor.submit(fn)
        result: asyncio.Future[T] = loop.create_future()
        self._inflight[key] = result

        def done(_: object) -> None:
            if self._inflight.get(key) is result:
                del self._inflight[key]
            if result.done():
                return
            try:
                if cfut.cancelled():
                    raise PoolClosed("the encoder pool was closed")
                value = cfut.result()
                if on_result is not None:
                    on_result(value)
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the job
                result.set_exception(exc)
                result.exception()  # retrieved: every caller may have gone
                return
            result.set_result(value)

        def wake(_: object) -> None:
            # A closed loop has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(done, None)

        cfut.add_done_callback(wake)
        return await asyncio.shield(result)

    def close(self) -> None:
        """Stop accepting jobs, drop queued ones and wait for running ones to end."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
