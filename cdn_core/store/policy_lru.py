"""Least recently used over bytes: the baseline policy."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from cdn_core.store.policy import EvictCallback


class LRUPolicy:
    """One ``OrderedDict`` from least to most recently used; every key is admitted."""

    name = "lru"

    def __init__(self, max_bytes: int, on_evict: EvictCallback) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._q: OrderedDict[Hashable, int] = OrderedDict()
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._q)

    def __contains__(self, key: object) -> bool:
        return key in self._q

    def hit(self, key: Hashable, fh: int) -> None:
        self._q.move_to_end(key)

    def miss(self, fh: int) -> None:
        return None

    def insert(self, key: Hashable, fh: int, size: int) -> bool:
        if size > self.max_bytes:
            return False
        self._q[key] = size
        self.used += size
        self._shrink()
        return True

    def resize(self, max_bytes: int) -> None:
        """A new budget (bytes); evicts least recently used keys down to it."""
        self.max_bytes = max_bytes
        self._shrink()

    def _shrink(self) -> None:
        q = self._q
        while self.used > self.max_bytes:
            victim, vsize = q.popitem(last=False)
            self.used -= vsize
            self._on_evict(victim, "capacity")

    def remove(self, key: Hashable) -> None:
        size = self._q.pop(key, None)
        if size is not None:
            self.used -= size

    def replace(self, old: Hashable, new: Hashable, size: int) -> bool:
        self.remove(old)
        return self.insert(new, 0, size)

    def access(self, key: Hashable, fh: int, size: int) -> bool:
        q = self._q
        if key in q:
            q.move_to_end(key)
            return True
        self.insert(key, fh, size)
        return False
