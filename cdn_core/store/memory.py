"""A byte-bounded in-memory store with a pluggable eviction policy and purge indexes.

Bytes charged per entry are what :meth:`StoredResponse.compute_size` measures: head +
body + the entry's own objects and its share of the store's indexes (see entry.py for how
that overhead was measured). Objects larger than ``max_object_bytes`` are never admitted
(the node streams them through). Which entries stay is the policy's call
(``policy="lru" | "wtinylfu" | "s3fifo"``, see policy.py); host and surrogate-key indexes
let a purge by host, prefix or tag touch only matching entries.

With a :class:`~cdn_core.store.disk.DiskTier`, every admitted response is also written
to disk (in a writer thread once :meth:`start` ran), a memory miss falls through to the
disk index, and what the disk returns is promoted into memory through the policy.

The hit path (:meth:`lookup` finding a variant) is two dict lookups, the variant match
and the policy's O(1) bookkeeping; the key's hash is the one ``str`` caches.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import Any

from cdn_core.http_cache import Fields
from cdn_core.http_cache.decision import Freshness
from cdn_core.http_cache.vary import VaryKey, secondary_key
from cdn_core.store.disk import DiskTier
from cdn_core.store.entry import StoredResponse
from cdn_core.store.policies import make_policy
from cdn_core.store.policy import EvictionReason, PolicyName
from cdn_core.store.protocol import PurgeSelector

VariantId = tuple[str, VaryKey]


def _freq_hash(entry: Hashable) -> int:
    # Every variant of a URL shares the URL's frequency (a miss knows only the URL).
    return hash(entry.key)  # type: ignore[attr-defined]


class MemoryStore:
    """Variants bounded by ``max_bytes`` in total and ``max_object_bytes`` each, at most
    ``max_variants`` per primary key (RFC 9111 4.1 leaves the bound to the cache; the
    oldest variant goes first), kept or evicted by ``policy``."""

    def __init__(
        self,
        *,
        max_bytes: int,
        max_object_bytes: int,
        max_variants: int = 16,
        policy: PolicyName = "lru",
        disk: DiskTier | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_object_bytes = max_object_bytes
        self.max_variants = max_variants
        self.policy_name = policy
        self._policy = make_policy(policy, max_bytes, self._evicted, freq_hash=_freq_hash)
        self._variants: dict[str, list[StoredResponse]] = {}
        self._by_host: dict[str, set[str]] = {}
        self._by_tag: dict[str, set[str]] = {}
        self.disk = disk
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0
        self.evicted = {"capacity": 0, "variants": 0}
        self.purges = 0  # purges applied (CacheStore.purges)
        self.rejected_by = {"too_large": 0, "filter": 0}

    @property
    def bytes(self) -> int:
        return self._policy.used

    # lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the disk tier's writer thread (no-op without a disk tier)."""
        if self.disk is not None:
            self.disk.start()

    def close(self) -> None:
        """Flush pending disk writes and stop the writer (blocks; call from a thread)."""
        if self.disk is not None:
            self.disk.close()

    # lookups -------------------------------------------------------------------------
    def lookup(self, key: str, request_fields: Fields) -> StoredResponse | None:
        variants = self._variants.get(key)
        if variants:
            for entry in variants:
                if not entry.vary_names or (
                    secondary_key(entry.vary_names, request_fields) == entry.vary_key
                ):
                    self._policy.hit(entry, hash(key))
                    self.hits += 1
                    return entry
        self.misses += 1
        self._policy.miss(hash(key))
        if self.disk is not None:
            found = self.disk.get(key, request_fields)
            if found is not None:
                self.disk_hits += 1
                self._store(found)
                return found
        return None

    def variants(self, key: str) -> list[StoredResponse]:
        found = list(self._variants.get(key, ()))
        if not found and self.disk is not None:
            found = self.disk.variants(key)
        return found

    # writes --------------------------------------------------------------------------
    def put(self, entry: StoredResponse) -> bool:
        entry.size = entry.compute_size()
        if entry.size > self.max_object_bytes or entry.size > self.max_bytes:
            self.rejected_by["too_large"] += 1
            return False
        stored = self._store(entry)
        if self.disk is not None and self.disk.put(entry):
            stored = True
        return stored

    def _store(self, entry: StoredResponse) -> bool:
        """Make ``entry`` resident in memory if the policy admits it."""
        if not entry.size:
            entry.size = entry.compute_size()
        if entry.size > self.max_object_bytes or entry.size > self.max_bytes:
            return False
        variants = self._variants.get(entry.key)
        old = None
        if variants:
            # A response whose Vary names differ from the stored ones replaces them all:
            # the origin changed how it negotiates (RFC 9111 4.1 uses the newest response).
            if variants[0].vary_names != entry.vary_names:
                for v in list(variants):
                    self._drop(v)
                variants = None
            else:
                for v in variants:
                    if v.vary_key == entry.vary_key:
                        old = v
                        break
        if old is not None:
            assert variants is not None
            variants[variants.index(old)] = entry
            self._index_tags(entry)
            return self._policy.replace(old, entry, entry.size)
        if variants is None:
            variants = self._variants[entry.key] = []
            self._by_host.setdefault(entry.host, set()).add(entry.key)
        while len(variants) >= self.max_variants:
            self._drop(variants[0])
            self.evicted["variants"] += 1
        variants.append(entry)
        self._index_tags(entry)
        return self._policy.insert(entry, hash(entry.key), entry.size)

    def _index_tags(self, entry: StoredResponse) -> None:
        for tag in entry.surrogate_keys:
            self._by_tag.setdefault(tag, set()).add(entry.key)

    def _evicted(self, key: Hashable, reason: EvictionReason) -> None:
        """Policy callback: ``key`` (an entry) is no longer resident."""
        assert isinstance(key, StoredResponse)
        self._unlink(key)
        if reason == "admission":
            self.rejected_by["filter"] += 1
        else:
            self.evicted[reason] += 1

    def _drop(self, entry: StoredResponse) -> None:
        self._policy.remove(entry)
        self._unlink(entry)

    def _unlink(self, entry: StoredResponse) -> None:
        variants = self._variants.get(entry.key)
        if not variants:
            return
        for i, v in enumerate(variants):
            if v is entry:
                del variants[i]
                break
        else:
            return
        if variants:
            return
        del self._variants[entry.key]
        keys = self._by_host.get(entry.host)
        if keys is not None:
            keys.discard(entry.key)
            if not keys:
                del self._by_host[entry.host]
        for tag in entry.surrogate_keys:
            tagged = self._by_tag.get(tag)
            if tagged is not None:
                tagged.discard(entry.key)
                if not tagged:
                    del self._by_tag[tag]

    def remove(self, entry: StoredResponse) -> None:
        variants = self._variants.get(entry.key)
        if variants and any(v is entry for v in variants):
            self._drop(entry)
        if self.disk is not None:
            self.disk.remove(entry.key, entry.vary_key)

    # purge ---------------------------------------------------------------------------
    def purge(self, selector: PurgeSelector, now: float) -> int:
        """Hard: remove matching responses from memory and disk. Soft: mark the memory
        copies stale (the next request revalidates; stale-if-error can still use them) and
        rewrite them to disk stale; on disk a soft purge of everything is a persisted mark
        (see DiskTier.purge), other soft purges remove the disk-only copies (one full fetch
        instead of a revalidation; never a purged response served fresh after a restart)."""
        self.purges += 1
        touched: set[VariantId] = set()
        soft_marked: list[StoredResponse] = []
        for key in selector.keys(self._variants, self._by_host, self._by_tag):
            for entry in list(self._variants.get(key, ())):
                if selector.type == "tag" and selector.value not in entry.surrogate_keys:
                    continue
                touched.add((entry.key, entry.vary_key))
                if selector.soft:
                    age = entry.freshness.age(now)
                    entry.set_freshness(
                        replace(
                            entry.freshness,
                            freshness_lifetime=min(entry.freshness.freshness_lifetime, age),
                        )
                    )
                    soft_marked.append(entry)
                else:
                    self._drop(entry)
        if self.disk is not None:
            touched |= self.disk.purge(selector, now)
            for entry in soft_marked:
                self.disk.put(entry)
        return len(touched)

    def stats(self) -> dict[str, Any]:
        """Counters. ``lookup_hits``/``lookup_misses`` count :meth:`lookup` calls (the node's
        request counters are separate); ``evictions``/``rejected`` are totals of
        ``evictions_by_reason``/``rejected_by_reason``."""
        disk = self.disk.stats() if self.disk is not None else None
        out: dict[str, Any] = {
            "policy": self.policy_name,
            # Stored responses either tier can serve. Writes go through to disk, so memory
            # is (nearly) a subset of disk and the larger count is the union's.
            "entries": max(len(self._policy), disk["entries"] if disk else 0),
            "memory_entries": len(self._policy),
            "keys": len(self._variants),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "lookup_hits": self.hits,
            "lookup_misses": self.misses,
            "evictions": sum(self.evicted.values()),
            "evictions_by_reason": dict(self.evicted),
            "rejected": sum(self.rejected_by.values()),
            "rejected_by_reason": dict(self.rejected_by),
        }
        if disk is not None:
            out["disk"] = {**disk, "hits": self.disk_hits}
        return out


__all__ = ["Freshness", "MemoryStore"]
