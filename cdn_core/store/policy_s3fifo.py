"""S3-FIFO over bytes (Yang et al., "FIFO queues are all you need for cache eviction",
SOSP 2023).

* New keys enter the **small** FIFO (10% of the budget). When it is evicted from, a key
  requested at least ``move_threshold`` times while there moves to **main**; any other
  goes to the **ghost** FIFO, which remembers only the key's frequency hash (an int) for
  up to 90% of the budget's worth of evicted bytes.
* A miss whose key is in the ghost is inserted straight into main (it was wanted again
  soon after being dropped).
* **Main** is a FIFO with a 2-bit clock: a key requested since it was queued is
  reinserted with its count decremented instead of evicted.
* Like libCacheSim's current S3FIFO.c, while the cache has never evicted, keys that find
  the small queue full go to main; unlike it, a key larger than the small queue is not
  refused outright but lands in the ghost, so its next request admits it into main.

Queues are ``OrderedDict`` (FIFO order, O(1) removal anywhere for purges); a key's value
packs ``size << 2 | count`` so no per-key object is allocated.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from cdn_core.store.policy import EvictCallback, FreqHash


class S3FIFOPolicy:
    name = "s3fifo"

    def __init__(
        self,
        max_bytes: int,
        on_evict: EvictCallback,
        *,
        freq_hash: FreqHash = hash,
        small_fraction: float = 0.1,
        ghost_fraction: float = 0.9,
        move_threshold: int = 1,
    ) -> None:
        self.max_bytes = max_bytes
        self._on_evict = on_evict
        self._fh = freq_hash
        self.small_max = max(1, int(max_bytes * small_fraction))
        self.ghost_max = int(max_bytes * ghost_fraction)
        self.move_threshold = move_threshold
        self._small: OrderedDict[Hashable, int] = OrderedDict()
        self._main: OrderedDict[Hashable, int] = OrderedDict()
        self._ghost: OrderedDict[int, int] = OrderedDict()
        self.s_bytes = 0
        self.m_bytes = 0
        self.g_bytes = 0
        self._evicted = False

    @property
    def used(self) -> int:
        return self.s_bytes + self.m_bytes

    def __len__(self) -> int:
        return len(self._small) + len(self._main)

    def __contains__(self, key: object) -> bool:
        return key in self._small or key in self._main

    def hit(self, key: Hashable, fh: int) -> None:
        q = self._small if key in self._small else self._main
        v = q[key]
        if v & 3 != 3:
            q[key] = v + 1

    def miss(self, fh: int) -> None:
        return None

    def access(self, key: Hashable, fh: int, size: int) -> bool:
        q = self._small if key in self._small else self._main if key in self._main else None
        if q is not None:
            v = q[key]
            if v & 3 != 3:
                q[key] = v + 1
            return True
        self.insert(key, fh, size)
        return False

    def insert(self, key: Hashable, fh: int, size: int) -> bool:
        if size > self.max_bytes:
            return False
        g = self._ghost.pop(fh, None)
        if g is not None:
            self.g_bytes -= g
            self._main[key] = size << 2
            self.m_bytes += size
        elif size > self.small_max:
            self._remember(fh, size)
            self._on_evict(key, "admission")
            return False
        elif not self._evicted and self.s_bytes + size > self.small_max:
            self._main[key] = size << 2
            self.m_bytes += size
        else:
            self._small[key] = size << 2
            self.s_bytes += size
        if self.s_bytes + self.m_bytes > self.max_bytes:
            self._evict()
            return key in self._small or key in self._main
        return True

    def remove(self, key: Hashable) -> None:
        v = self._small.pop(key, None)
        if v is not None:
            self.s_bytes -= v >> 2
            return
        v = self._main.pop(key, None)
        if v is not None:
            self.m_bytes -= v >> 2

    def replace(self, old: Hashable, new: Hashable, size: int) -> bool:
        """``new`` takes ``old``'s queue (at the tail) and access count."""
        if size > self.max_bytes:
            self.remove(old)
            return False
        if old in self._small:
            v = self._small.pop(old)
            self._small[new] = size << 2 | (v & 3)
            self.s_bytes += size - (v >> 2)
        elif old in self._main:
            v = self._main.pop(old)
            self._main[new] = size << 2 | (v & 3)
            self.m_bytes += size - (v >> 2)
        else:
            return self.insert(new, self._fh(new), size)
        if self.s_bytes + self.m_bytes > self.max_bytes:
            self._evict()
            return new in self
        return True

    def _remember(self, fh: int, size: int) -> None:
        ghost = self._ghost
        ghost[fh] = size
        self.g_bytes += size
        while self.g_bytes > self.ghost_max and ghost:
            self.g_bytes -= ghost.popitem(last=False)[1]

    def _evict(self) -> None:
        self._evicted = True
        small = self._small
        main = self._main
        while self.s_bytes + self.m_bytes > self.max_bytes:
            if self.m_bytes > self.max_bytes - self.small_max or not small:
                # Main: FIFO with a 2-bit clock.
                while main:
                    key, v = main.popitem(last=False)
                    if v & 3:
                        main[key] = v - 1
                        continue
                    self.m_bytes -= v >> 2
                    self._on_evict(key, "capacity")
                    break
            else:
                # Small: promote what was requested again, drop the first one that was not.
                while small:
                    key, v = small.popitem(last=False)
                    size = v >> 2
                    self.s_bytes -= size
                    if v & 3 >= self.move_threshold:
                        main[key] = size << 2
                        self.m_bytes += size
                        continue
                    self._remember(self._fh(key), size)
                    self._on_evict(key, "admission")
                    break
