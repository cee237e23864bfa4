"""Eviction and admission policies behind :class:`~cdn_core.store.memory.MemoryStore`.

A policy decides which resident keys stay within a byte budget; the store owns the
entries and indexes. Keys are opaque and hashable (the store passes its
:class:`~cdn_core.store.entry.StoredResponse` objects, which hash by identity; the hit-ratio
benchmark passes integer object ids). ``fh`` is the key's frequency hash: ``hash()`` of
the primary cache key, shared by all variants of a URL and known on a miss before any
entry exists. Policies call ``on_evict(key, reason)`` for every key they drop, with a
reason from :data:`EVICTION_REASONS` (bounded, so it can label a metric).

This module is the policies' common ground (their protocol and types) and imports none of
them; :func:`cdn_core.store.policies.make_policy` chooses one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Literal, Protocol

PolicyName = Literal["lru", "wtinylfu", "s3fifo", "sizesplit"]
POLICIES: tuple[PolicyName, ...] = ("lru", "wtinylfu", "s3fifo", "sizesplit")

# "capacity": the least valuable resident key made room for a newer one;
# "admission": a newcomer lost the admission test (TinyLFU's frequency comparison, or
#   S3-FIFO's small queue dropping a key not requested again) and was dropped.
EvictionReason = Literal["capacity", "admission"]
EVICTION_REASONS: tuple[EvictionReason, ...] = ("capacity", "admission")

EvictCallback = Callable[[Hashable, EvictionReason], None]
FreqHash = Callable[[Hashable], int]


def ignore_eviction(key: Hashable, reason: EvictionReason) -> None:
    """The default ``on_evict``: nothing to do."""
    return None


class Policy(Protocol):
    max_bytes: int

    @property
    def name(self) -> str: ...

    @property
    def used(self) -> int:
        """Bytes resident."""

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def hit(self, key: Hashable, fh: int) -> None:
        """A request for resident ``key``."""

    def miss(self, fh: int) -> None:
        """A request for a key that is not resident (frequency bookkeeping only)."""

    def insert(self, key: Hashable, fh: int, size: int) -> bool:
        """Make ``key`` (``size`` bytes, not resident) resident if the policy admits it;
        evicts as needed. Returns whether ``key`` is resident afterwards (False when it was
        refused, or dropped at once: then ``on_evict(key, ...)`` was called)."""

    def remove(self, key: Hashable) -> None:
        """Forget a resident key (purge, replacement); no callback."""

    def replace(self, old: Hashable, new: Hashable, size: int) -> bool:
        """``new`` (``size`` bytes) takes resident ``old``'s place and standing (a 304
        refresh or a re-fetch of the same variant); evicts as needed. Returns whether
        ``new`` is resident."""

    def access(self, key: Hashable, fh: int, size: int) -> bool:
        """One request, for replay: hit if resident, else miss then insert. Returns hit."""
