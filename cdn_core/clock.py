"""Injected clocks: code that needs the time takes a ``Clock`` so that tests can move time
without sleeping."""

from __future__ import annotations

import time as _time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for ``Date``, ``Age`` and freshness)."""

    def monotonic(self) -> float:
        """Monotonic seconds (for timeouts and intervals)."""


class SystemClock:
    """The real clocks of the machine: ``time()`` is wall-clock seconds since the epoch,
    ``monotonic()`` seconds from an arbitrary start. The C functions themselves, so a
    reading costs no Python frame (the hit path reads the time per request)."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


class ManualClock:
    """A clock that moves only when told to; ``advance(seconds)`` moves both readings."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds
