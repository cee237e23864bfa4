"""In-memory token buckets (one process's counters), bounded in number.

:meth:`LocalBuckets.take` refills a bucket by ``rate`` tokens a second up to
``capacity`` and takes one token when there is one. Buckets untouched the longest are
dropped first when more than ``max_buckets`` exist (a dropped bucket starts full again,
which errs towards admitting). Pure: the caller passes ``now`` (monotonic seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one take: ``allowed``, whole tokens ``remaining`` after it, and
    seconds until a token is available (``retry_after``, 0 when allowed) and until the
    bucket is full again (``reset``)."""

    allowed: bool
    remaining: int
    retry_after: float
    reset: float


def verdict(allowed: bool, tokens: float, rate: float, capacity: float) -> Verdict:
    """A :class:`Verdict` from the tokens left in a bucket after a take."""
    retry = 0.0 if allowed else max(0.0, (1.0 - tokens) / rate)
    return Verdict(allowed, max(0, math.floor(tokens)), retry, max(0.0, (capacity - tokens) / rate))


class LocalBuckets:
    """Token buckets keyed by any hashable value."""

    __slots__ = ("_buckets", "max_buckets")

    def __init__(self, max_buckets: int = 100_000) -> None:
        self.max_buckets = max_buckets
        # key -> [tokens, last refill time]; dict order is least recently used first.
        self._buckets: dict[object, list[float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: object, rate: float, capacity: float, now: float) -> Verdict:
        b = self._buckets.pop(key, None)
        if b is None:
            b = [capacity, now]
            if len(self._buckets) >= self.max_buckets:
                del self._buckets[next(iter(self._buckets))]
        else:
            b[0] = min(capacity, b[0] + (now - b[1]) * rate)
            b[1] = now
        self._buckets[key] = b
        allowed = b[0] >= 1.0
        if allowed:
            b[0] -= 1.0
        return verdict(allowed, b[0], rate, capacity)

    def clear(self) -> None:
        self._buckets.clear()
