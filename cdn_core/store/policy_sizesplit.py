"""Size split: W-TinyLFU for small objects, LRU for large ones, in one byte budget.

Why two parts: on CDN traces no single policy wins both hit ratios
(bench/hit_ratio/RESULTS.md). W-TinyLFU keeps the many small, popular objects and wins
object hit ratio, but its frequency test refuses most large objects, whose bytes are most
of the traffic: on the Download trace at 1% it reaches 0.097 byte hit ratio where LRU
reaches 0.220. LRU keeps large objects while they are reused and loses the small hot set
to them. Splitting by size gives each kind of object the policy that suits it, the idea
of size-class partitioning in memcached's slab classes and of the size-aware admission
in AdaptSize (Berger, Sitaraman, Harchol-Balter, NSDI 2017), without AdaptSize's
per-object admission probability.

* Objects of at most ``threshold`` bytes (0.15% of the budget by default) go to the
  **small** part, a :class:`~cdn_core.store.policy_wtinylfu.WTinyLFUPolicy`; larger ones
  to the **large** part, a :class:`~cdn_core.store.policy_lru.LRUPolicy`.
* Each part has a **share** of the budget (large: 80% by default), but the split is
  **soft**: a part may use space the other leaves unused, and gives it back, least
  valuable first, when the other part needs its share. A workload with no large objects
  (Zipf) thus runs as plain W-TinyLFU, and one of only large objects as plain LRU.
* Sizes are what the store charges (:meth:`~cdn_core.store.entry.StoredResponse.compute_size`:
  the body plus about 3 KB for the entry's objects and header lines), so under about
  2 MB of budget nearly every entry is "large" and the policy is close to plain LRU.
* An object its part cannot hold even after the other part gives back all it borrowed
  is refused before anything is evicted.
* The frequency sketch counts every miss (its size is unknown until the fetch) and the
  hits of small objects, the only ones it is asked about.
* The defaults (threshold 0.15%, large share 80%) come from a sweep of threshold x share
  over the CDN traces' cells (RESULTS.md). Tuning the share online with miniature
  simulations (Waldspurger et al., ATC 2017: five shadow caches over 1/8 of the keys)
  raised the worst cell by about 0.01 on those 200k-request runs, so it is not here.

Measured (``python -m bench.hit_ratio``, full traces; bench/hit_ratio/RESULTS.md): over
the SocialMedia, Download and Zipf cells, the worst min(OHR/target, BHR/target), where
target is the best libCacheSim policy of the cell, is 0.935 against W-TinyLFU's 0.539
and S3-FIFO's 0.616. With small budgets it gives up origin requests for bytes: in the
whole-stack Download replay at 1%, 0.92x W-TinyLFU's origin bytes for 2.25x its origin
requests, which is why the mid tiers' default stays ``wtinylfu``.
"""

from __future__ import annotations

from collections.abc import Hashable

from cdn_core.store.policy import EvictCallback, FreqHash
from cdn_core.store.policy_lru import LRUPolicy
from cdn_core.store.policy_wtinylfu import WTinyLFUPolicy

Part = WTinyLFUPolicy | LRUPolicy


class SizeSplitPolicy:
    """Two parts over one budget of ``max_bytes`` bytes; see the module docstring.

    Args:
        threshold_fraction: objects larger than this fraction of ``max_bytes`` go to the
            LRU part.
        large_share: the fraction of ``max_bytes`` the LRU part may claim back from the
            small part (which may claim back the rest).
    """

    name = "sizesplit"

    def __init__(
        self,
        max_bytes: int,
        on_evict: EvictCallback,
        *,
        freq_hash: FreqHash = hash,
        threshold_fraction: float = 1.5e-3,
        large_share: float = 0.8,
    ) -> None:
        self.max_bytes = max_bytes
        self.threshold = max(1, int(max_bytes * threshold_fraction))
        self._fh = freq_hash
        self._on_evict = on_evict
        self._small = WTinyLFUPolicy(max_bytes, on_evict, freq_hash=freq_hash)
        self._large = LRUPolicy(max_bytes, on_evict)
        self.large_share = int(max_bytes * large_share)
        self.small_share = max_bytes - self.large_share

    @property
    def used(self) -> int:
        return self._small.used + self._large.used

    def __len__(self) -> int:
        return len(self._small) + len(self._large)

    def __contains__(self, key: object) -> bool:
        return key in self._large or key in self._small

    def _parts(self, size: int) -> tuple[Part, Part, int]:
        """The part for an object of ``size`` bytes, the other part, and the other's share."""
        if size > self.threshold:
            return self._large, self._small, self.small_share
        return self._small, self._large, self.large_share

    def _room(self, size: int, growth: int) -> Part | None:
        """The part for an object of ``size`` bytes, its budget set for ``growth`` more
        bytes: the other part first gives back what it borrowed beyond its share, least
        valuable first, as far as needed; the part then evicts from itself for the rest.
        None, with nothing moved, when the object cannot be held even after the other
        part gave back all it borrowed (evicting first would be for nothing)."""
        part, other, share = self._parts(size)
        if size > self.max_bytes - min(other.used, share):
            return None
        over = self.used + growth - self.max_bytes
        if over > 0 and other.used > share:
            other.resize(max(share, other.used - over))
        # Never below what the part holds: the other part holds the rest, at most.
        part.resize(self.max_bytes - other.used)
        return part

    def hit(self, key: Hashable, fh: int) -> None:
        if key in self._large:
            self._large.hit(key, fh)
        else:
            self._small.hit(key, fh)

    def miss(self, fh: int) -> None:
        # A miss's size is unknown until the fetch, so the sketch counts misses of every
        # size (and hits of small objects only, the ones it is asked about).
        self._small.miss(fh)

    def insert(self, key: Hashable, fh: int, size: int) -> bool:
        if size > self.max_bytes:
            return False
        part = self._room(size, size)
        if part is None:
            return self._refuse(key)
        return part.insert(key, fh, size)

    def _refuse(self, key: Hashable) -> bool:
        """``key`` is larger than its part's room while the other part holds no more than
        its share (a large object over ``large_share`` of the budget, while small objects
        fill the rest): an admission refusal, reported as the protocol requires."""
        self._on_evict(key, "admission")
        return False

    def remove(self, key: Hashable) -> None:
        if key in self._large:
            self._large.remove(key)
        else:
            self._small.remove(key)

    def replace(self, old: Hashable, new: Hashable, size: int) -> bool:
        """``new`` takes ``old``'s standing when both fall in the same part; otherwise
        ``old`` goes and ``new`` is inserted into its own part."""
        if size > self.max_bytes:
            self.remove(old)
            return False
        was = self._large if old in self._large else self._small
        if self._parts(size)[0] is not was:
            was.remove(old)
            return self.insert(new, self._fh(new), size)
        # ``size`` as the growth (old's size is the part's to know): the other part gives
        # back at most that much.
        part = self._room(size, size)
        if part is None:
            was.remove(old)
            return self._refuse(new)
        return part.replace(old, new, size)

    def access(self, key: Hashable, fh: int, size: int) -> bool:
        if key in self._large or key in self._small:
            self.hit(key, fh)
            return True
        self.miss(fh)
        self.insert(key, fh, size)
        return False
