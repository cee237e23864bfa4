"""A count-min frequency sketch with a doorkeeper, for TinyLFU admission.

TinyLFU (Einziger, Friedman, Manes, ACM ToS 2017) estimates how often a key was requested
in a recent sample of the stream:

* **Count-min sketch with conservative update.** ``width`` one-byte counters, saturating
  at ``max_count`` (255 by default; Caffeine packs 4-bit counters that stop at 15). Each
  key maps to :data:`DEPTH` of them by double hashing; an increment raises only the
  counters holding the minimum, and the estimate is that minimum.
* **Doorkeeper.** A Bloom filter in front of the sketch (cleared with each aging, and
  whenever half its slots are set): a key's first occurrence only sets its doorkeeper
  bits, so the many one-hit wonders of a CDN trace never reach (and pollute) the
  counters. The estimate adds one when the doorkeeper holds the key.
* **Aging.** After ``sample_size`` (``sample_factor x capacity``) increments every
  counter is halved (a C-speed ``bytes.translate``) and the doorkeeper cleared, so the
  sketch follows shifts in popularity.

Hashing: callers pass ``hash(key)``. For ``str`` keys CPython's hash is SipHash-1-3 keyed
per process (``PYTHONHASHSEED``), so nobody outside the process can aim requests at chosen
counters (hash flooding), and the value is cached on the string object: the store's dict
lookups compute it anyway, so the sketch gets it for free on the hit path. A third-party
hash (xxhash, mmh3) would cost a C call plus an ``encode()`` allocation per request and,
unseeded, would be predictable. Integers (the benchmark's object ids) hash to themselves,
so every hash goes through a 64-bit multiplicative mixer (Fibonacci hashing) before the
index arithmetic.
"""

from __future__ import annotations

DEPTH = 4
MAX_COUNT = 255
_M64 = (1 << 64) - 1
_MIX1 = 0x9E3779B97F4A7C15
_MIX2 = 0xC2B2AE3D27D4EB4F
_HALVE = bytes(i >> 1 for i in range(256))


def _pow2_at_least(n: int) -> int:
    return 1 << max(4, (n - 1).bit_length())


class FrequencySketch:
    """Frequency estimates for about ``capacity`` distinct keys (the cache's entry count).

    The table has ``16 * capacity`` counters (rounded up to a power of two: 16 bytes per
    cached entry, Caffeine's ratio); the doorkeeper ``32 * capacity`` one-byte slots probed
    twice; the sample is ``sample_factor * capacity`` increments."""

    __slots__ = (
        "capacity",
        "sample_size",
        "sample_factor",
        "max_count",
        "_table",
        "_mask",
        "_door",
        "_dmask",
        "_added",
        "_door_fill",
    )

    def __init__(
        self, capacity: int, *, sample_factor: int = 100, max_count: int = MAX_COUNT
    ) -> None:
        self.sample_factor = sample_factor
        self.max_count = max_count
        self.ensure_capacity(capacity, force=True)

    def ensure_capacity(self, capacity: int, *, force: bool = False) -> None:
        """Grow to ``capacity`` keys (never shrinks). The table and doorkeeper grow by
        tiling: indexes are hash bits masked by a power of two, so after doubling a key's
        counters sit at copies of its old counters and every estimate is unchanged (a
        byte-bounded cache learns its entry count as it fills; resetting the counts at each
        doubling would blind admission just while the cache warms up)."""
        capacity = max(16, capacity)
        if force:
            self.capacity = capacity
            width = _pow2_at_least(16 * capacity)
            self._table = bytearray(width)
            self._mask = width - 1
            door = _pow2_at_least(32 * capacity)
            self._door = bytearray(door)
            self._dmask = door - 1
            self._door_fill = 0
            self._added = 0
        elif capacity <= self.capacity:
            return
        else:
            self.capacity = capacity
            width = _pow2_at_least(16 * capacity)
            if width > len(self._table):
                self._table = self._table * (width // len(self._table))
                self._mask = width - 1
            door = _pow2_at_least(32 * capacity)
            if door > len(self._door):
                factor = door // len(self._door)
                self._door = self._door * factor
                self._door_fill *= factor
                self._dmask = door - 1
        self.sample_size = self.sample_factor * capacity

    def increment(self, h: int) -> None:
        """Record one occurrence of the key whose ``hash()`` is ``h``."""
        h = (h * _MIX1) & _M64
        door = self._door
        dm = self._dmask
        d1 = h & dm
        d2 = (h >> 40) & dm
        if not (door[d1] and door[d2]):
            self._door_fill += 2 - door[d1] - door[d2]
            door[d1] = 1
            door[d2] = 1
            if self._door_fill > self._dmask >> 1:
                # Half the slots set: false positives would let one-hit wonders through.
                self._door = bytearray(len(door))
                self._door_fill = 0
        else:
            t = self._table
            m = self._mask
            h2 = ((h * _MIX2) & _M64) | 1
            i0 = (h >> 32) & m
            i1 = (i0 + h2) & m
            i2 = (i1 + h2) & m
            i3 = (i2 + h2) & m
            c0 = t[i0]
            c1 = t[i1]
            c2 = t[i2]
            c3 = t[i3]
            low = min(c0, c1, c2, c3)
            if low < self.max_count:
                # Conservative update: only the counters at the minimum move.
                if c0 == low:
                    t[i0] = low + 1
                if c1 == low:
                    t[i1] = low + 1
                if c2 == low:
                    t[i2] = low + 1
                if c3 == low:
                    t[i3] = low + 1
        self._added += 1
        if self._added >= self.sample_size:
            self._reset()

    def frequency(self, h: int) -> int:
        """Estimated occurrences: the counters' minimum, plus one if the doorkeeper
        holds the key."""
        h = (h * _MIX1) & _M64
        door = self._door
        dm = self._dmask
        seen = 1 if door[h & dm] and door[(h >> 40) & dm] else 0
        t = self._table
        m = self._mask
        h2 = ((h * _MIX2) & _M64) | 1
        i0 = (h >> 32) & m
        i1 = (i0 + h2) & m
        i2 = (i1 + h2) & m
        i3 = (i2 + h2) & m
        return seen + min(t[i0], t[i1], t[i2], t[i3])

    def _reset(self) -> None:
        self._table = self._table.translate(_HALVE)
        self._door = bytearray(len(self._door))
        self._door_fill = 0
        self._added = 0

    def nbytes(self) -> int:
        return len(self._table) + len(self._door)
