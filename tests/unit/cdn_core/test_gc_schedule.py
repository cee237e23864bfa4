"""Scheduled full garbage collections (cdn_core.gc_schedule) and the store's footprint in
the collector: what a node keeps per stored response is what a full collection walks."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from cdn_core.gc_schedule import NEVER, PAUSE_BUCKETS, GcPauses, GcSchedule, installed
from cdn_core.http_cache.cache_control import MEMO_MAX_CHARS, parse_cache_control
from cdn_core.http_cache.dates import format_http_date
from cdn_core.node.exchange.entries import build_entry
from cdn_core.node.exchange.request import Request
from cdn_core.node.settings.cache import CacheSettings
from cdn_core.store import MemoryStore


class FakeLoop:
    """Records call_later instead of running it: the test decides when time passes."""

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Any) -> FakeTimer:
        timer = FakeTimer(delay, callback)
        self.timers.append(timer)
        return timer


class FakeTimer:
    def __init__(self, delay: float, callback: Any) -> None:
        self.delay, self.callback, self.cancelled = delay, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Node:
    next: Any = None


@pytest.fixture
def schedule():
    made: list[GcSchedule] = []

    def make(interval: float) -> tuple[GcSchedule, FakeLoop]:
        s, loop = GcSchedule(interval), FakeLoop()
        s.install(loop)  # type: ignore[arg-type]
        made.append(s)
        return s, loop

    yield make
    for s in made:
        s.uninstall()


def _grow_long_lived(n: int) -> list[list[int]]:
    # Tracked containers that survive young collections: what a filling cache makes.
    return [[i] for i in range(n)]


def test_no_automatic_full_collection_while_installed_and_cpythons_rule_after(schedule):
    before = gc.get_threshold()
    s, loop = schedule(300.0)
    assert gc.get_threshold() == (before[0], before[1], NEVER) and gc.get_freeze_count() > 0
    assert [t.delay for t in loop.timers] == [300.0]
    full_before = sum(s.pauses.counts[2])  # install's own collection, before the freeze
    kept = _grow_long_lived(300_000)
    assert sum(s.pauses.counts[2]) == full_before, "CPython ran a full collection by itself"
    s.uninstall()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert loop.timers[0].cancelled and installed() is None
    # Observing only (interval 0) keeps CPython's rule, which collects as the heap grows.
    watch, _ = schedule(0.0)
    assert gc.get_threshold() == before
    kept += _grow_long_lived(600_000)
    assert sum(watch.pauses.counts[2]) >= 1
    del kept


def test_the_scheduled_collection_frees_cycles_and_schedules_the_next(schedule):
    s, loop = schedule(120.0)
    freed: list[bool] = []
    cycle = Node()
    cycle.next = cycle
    weakref.finalize(cycle, freed.append, True)
    gc.collect(1)  # survives the young collections: now in the oldest generation
    del cycle
    gc.collect(1)
    assert freed == [], "young collections do not walk old objects"
    full_before = sum(s.pauses.counts[2])
    loop.timers[-1].callback()
    assert freed == [True]
    assert s.full_collections == 1 and [t.delay for t in loop.timers] == [120.0, 120.0]
    assert sum(s.pauses.counts[2]) == full_before + 1


def test_one_schedule_per_process(schedule):
    schedule(60.0)
    with pytest.raises(RuntimeError):
        GcSchedule(60.0).install(FakeLoop())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        GcSchedule(-1.0)


def test_pauses_are_a_histogram_by_generation():
    now = [100.0]
    pauses = GcPauses(clock=lambda: now[0])
    for gen, pause in ((0, 0.00005), (0, 0.0003), (2, 0.3), (2, 9.0)):
        pauses("start", {"generation": gen})
        now[0] += pause
        pauses("stop", {"generation": gen, "collected": 0, "uncollectable": 0})
    (family,) = pauses.families("mid")
    samples = {(s.name, s.labels.get("generation"), s.labels.get("le")): s.value
               for s in family.samples}
    assert samples[("cdn_gc_pause_seconds_bucket", "0", "0.0001")] == 1
    assert samples[("cdn_gc_pause_seconds_bucket", "0", "0.0005")] == 2
    assert samples[("cdn_gc_pause_seconds_bucket", "2", "0.25")] == 0
    assert samples[("cdn_gc_pause_seconds_bucket", "2", "0.5")] == 1
    assert samples[("cdn_gc_pause_seconds_bucket", "2", repr(PAUSE_BUCKETS[-1]))] == 1
    assert samples[("cdn_gc_pause_seconds_bucket", "2", "+Inf")] == 2
    assert samples[("cdn_gc_pause_seconds_count", "2", None)] == 2
    assert samples[("cdn_gc_pause_seconds_sum", "2", None)] == pytest.approx(9.3)
    assert samples[("cdn_gc_pause_seconds_count", "1", None)] == 0


def test_cache_control_values_are_parsed_once_and_shared_when_short():
    value = "public, max-age=60"
    assert parse_cache_control(value) is parse_cache_control("public, max-age=60"[:])
    long = "max-age=60, " + "x" * MEMO_MAX_CHARS
    assert parse_cache_control(long) == parse_cache_control(long)
    assert parse_cache_control(long) is not parse_cache_control(long)
    assert parse_cache_control('no-cache="set-cookie"').no_cache_fields == {"set-cookie"}


def test_a_stored_response_costs_the_collector_at_most_four_objects():
    # A full collection walks every object the collector tracks: the store's footprint
    # in it is the pause per stored response. Built as the node builds them.
    settings = CacheSettings()
    store = MemoryStore(max_bytes=1 << 30, max_object_bytes=1 << 20)
    t0 = 1_700_000_000.0
    n = 2000
    gc.collect()
    base = len(gc.get_objects())
    for i in range(n):
        req = Request("GET", f"/o/{i}", [("Host", "h")], {"host": "h"}, "1.1", True, b"", "c")
        headers = [("Date", format_http_date(t0)), ("Cache-Control", "public, max-age=60"),
                   ("Content-Type", "image/png"), ("ETag", f'"{i}"'),
                   ("Last-Modified", format_http_date(t0 - 60))]
        store.put(build_entry(key=f"http://h/o/{i}", host="h", req=req, status=200,
                              reason="OK", headers=headers, body=b"x" * 100,
                              request_time=t0, response_time=t0, settings=settings,
                              via="1.1 mid"))
    del req, headers
    gc.collect()
    per_entry = (len(gc.get_objects()) - base) / n
    assert store.stats()["entries"] == n
    assert per_entry <= 4.1, per_entry
