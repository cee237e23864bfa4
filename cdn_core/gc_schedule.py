"""Full garbage collections on a schedule, instead of CPython's growth rule, for the
long-running node processes; and the pause of every collection, for ``/metrics``.

Why: a cache holds its stored responses for minutes to days, and each one is a handful
of objects CPython's cyclic collector tracks (the entry, its header list, its
Cache-Control and freshness objects). CPython runs a full (generation 2) collection
whenever the objects promoted since the last one reach a quarter of the long-lived ones
(``gcmodule.c``, ``long_lived_pending``): in a filling or churning cache that is every
few seconds, and each one walks every stored entry while the event loop stands still.
Measured on a mid tier filling with 1 KB misses (``python -m mid_tier`` in front of
``python -m origin --synthetic``): with about 100,000 entries each full collection
stopped the loop for 0.5 s, and full collections took 15% of the process's CPU.

Stored responses are freed by reference counting when evicted (they hold no cycles), and
what little cyclic garbage a node makes (an exception's traceback, a closed connection)
dies young and is found by the generation 0 and 1 collections, which never walk the old
objects. The same measurement found 100-350 unreachable objects per 30,000 requests left
for a full collection. So :class:`GcSchedule` keeps CPython's young collections, turns off
its automatic full ones and runs one every ``full_interval`` seconds on the event loop;
it moves the objects alive at startup (modules, classes, settings) to the permanent
generation (``gc.freeze``), which no collection walks. A full collection still stops the
loop for as long as the heap takes to walk, once per interval rather than every few
seconds. Python documents both controls (``gc.set_threshold``, ``gc.freeze``); Instagram
described the freeze for long-running servers (2017, "Dismissing Python Garbage
Collection at Instagram").
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

# Pause buckets, seconds: a young collection takes tens of microseconds, a full one over a
# large cache hundreds of milliseconds.
PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
GENERATIONS = ("0", "1", "2")
# gc.set_threshold's third value is compared with a C int count of generation 1
# collections; this many are never reached (one a second would take 68 years).
NEVER = 2**31 - 1

_installed: GcSchedule | None = None


class GcPauses:
    """Count and duration of the collector's runs by generation, from ``gc.callbacks``.

    ``counts[g][i]`` is the number of generation ``g`` collections whose pause fell in
    bucket ``i`` of :data:`PAUSE_BUCKETS` (the last index: above the largest); ``sums[g]``
    their total, seconds. ``clock`` is injected for tests (seconds, monotonic).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.counts = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in GENERATIONS]
        self.sums = [0.0 for _ in GENERATIONS]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self.clock()
            return
        pause = self.clock() - self._started
        g = int(info["generation"])
        self.counts[g][bisect.bisect_left(PAUSE_BUCKETS, pause)] += 1
        self.sums[g] += pause

    def families(self, tier: str) -> Iterator[HistogramMetricFamily]:
        """``cdn_gc_pause_seconds{tier,generation}``, a histogram (Prometheus families)."""
        family = HistogramMetricFamily(
            "cdn_gc_pause_seconds",
            "Event loop pauses of the cyclic garbage collector, seconds, by generation "
            "(2: full collections, run every gc_full_interval)",
            labels=["tier", "generation"],
        )
        for g, name in enumerate(GENERATIONS):
            running = 0
            buckets = []
            for bound, n in zip((*PAUSE_BUCKETS, float("inf")), self.counts[g], strict=True):
                running += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
            family.add_metric([tier, name], buckets, self.sums[g])
        yield family


class GcSchedule:
    """The collector policy of one process (see the module docstring).

    :meth:`install` starts observing pauses (:class:`GcPauses`). With ``full_interval``
    > 0 (seconds) it also freezes the objects alive so far, turns off CPython's automatic
    full collections and runs ``gc.collect()`` on ``loop`` every ``full_interval``; with
    0 CPython's own rule stays. :meth:`uninstall` undoes all of it. One per process (the
    collector is global): installing a second raises :class:`RuntimeError`.
    """

    def __init__(self, full_interval: float, pauses: GcPauses | None = None) -> None:
        if full_interval < 0:
            raise ValueError("full_interval must be >= 0 seconds")
        self.full_interval = full_interval
        self.pauses = pauses or GcPauses()
        self.full_collections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._thresholds: tuple[int, int, int] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        global _installed
        if _installed is not None:
            raise RuntimeError("a GcSchedule is already installed in this process")
        _installed = self
        gc.callbacks.append(self.pauses)
        if not self.full_interval:
            return
        self._loop = loop
        gc.collect()
        gc.freeze()
        self._thresholds = gc.get_threshold()
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, NEVER)
        self._timer = loop.call_later(self.full_interval, self.collect)

    def collect(self) -> int:
        """Run a full collection now and schedule the next; returns what gc.collect found."""
        found = gc.collect()
        self.full_collections += 1
        if self._loop is not None and _installed is self:
            self._timer = self._loop.call_later(self.full_interval, self.collect)
        return found

    def uninstall(self) -> None:
        global _installed
        if _installed is not self:
            return
        _installed = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.pauses in gc.callbacks:
            gc.callbacks.remove(self.pauses)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
            gc.unfreeze()


def installed() -> GcSchedule | None:
    """The process's installed :class:`GcSchedule`, if any (for the metrics collector)."""
    return _installed


class GcCollector(Collector):
    """Exports the installed schedule's pauses as ``cdn_gc_pause_seconds`` (nothing when
    none is installed, as for nodes started inside a test process)."""

    def __init__(self, tier: str) -> None:
        self.tier = tier

    def collect(self) -> Iterator[HistogramMetricFamily]:
        schedule = _installed
        if schedule is not None:
            yield from schedule.pauses.families(self.tier)
