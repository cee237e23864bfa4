"""A byte-bounded in-memory store with LRU eviction and purge indexes.

Bytes charged per entry are head + body + a measured fixed overhead
(:data:`~cdn_core.store.entry.ENTRY_OVERHEAD_BYTES`). Objects larger than
``max_object_bytes`` are never admitted (the node streams them through). Host and
surrogate-key indexes let a purge by host, prefix or tag touch only matching entries.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any

from cdn_core.http_cache import Fields
from cdn_core.http_cache.decision import Freshness
from cdn_core.http_cache.vary import secondary_key
from cdn_core.store.entry import StoredResponse
from cdn_core.store.protocol import PurgeSelector

VariantId = tuple[str, tuple[tuple[str, str], ...]]


class MemoryStore:
    """LRU over variants, bounded by ``max_bytes`` in total and ``max_object_bytes`` per
    entry, with at most ``max_variants`` variants per primary key (RFC 9111 4.1 leaves the
    bound to the cache; the least recently used variant goes first)."""

    def __init__(self, *, max_bytes: int, max_object_bytes: int, max_variants: int = 16) -> None:
        self.max_bytes = max_bytes
        self.max_object_bytes = max_object_bytes
        self.max_variants = max_variants
        self._lru: OrderedDict[VariantId, StoredResponse] = OrderedDict()
        self._variants: dict[str, list[StoredResponse]] = {}
        self._by_host: dict[str, set[str]] = {}
        self._by_tag: dict[str, set[str]] = {}
        self.bytes = 0
        self.evictions = 0
        self.rejected = 0

    # lookups -------------------------------------------------------------------------
    def lookup(self, key: str, request_fields: Fields) -> StoredResponse | None:
        variants = self._variants.get(key)
        if not variants:
            return None
        for entry in variants:
            if not entry.vary_names or secondary_key(entry.vary_names, request_fields) == (
                entry.vary_key
            ):
                self._lru.move_to_end((key, entry.vary_key))
                return entry
        return None

    def variants(self, key: str) -> list[StoredResponse]:
        return list(self._variants.get(key, ()))

    # writes --------------------------------------------------------------------------
    def put(self, entry: StoredResponse) -> bool:
        entry.size = entry.compute_size()
        if entry.size > self.max_object_bytes or entry.size > self.max_bytes:
            self.rejected += 1
            return False
        vid = (entry.key, entry.vary_key)
        old = self._lru.get(vid)
        if old is not None:
            self.remove(old)
        variants = self._variants.setdefault(entry.key, [])
        # A response whose Vary names differ from the stored ones replaces them all: the
        # origin changed how it negotiates (RFC 9111 4.1 uses the newest response).
        if variants and variants[0].vary_names != entry.vary_names:
            for v in list(variants):
                self.remove(v)
            variants = self._variants.setdefault(entry.key, [])
        while len(variants) >= self.max_variants:
            self.remove(variants[0])
            self.evictions += 1
        variants.append(entry)
        self._lru[vid] = entry
        self.bytes += entry.size
        self._by_host.setdefault(entry.host, set()).add(entry.key)
        for tag in entry.surrogate_keys:
            self._by_tag.setdefault(tag, set()).add(entry.key)
        while self.bytes > self.max_bytes and self._lru:
            _, victim = next(iter(self._lru.items()))
            self.remove(victim)
            self.evictions += 1
        return True

    def remove(self, entry: StoredResponse) -> None:
        vid = (entry.key, entry.vary_key)
        if self._lru.get(vid) is not entry:
            return
        del self._lru[vid]
        self.bytes -= entry.size
        variants = self._variants.get(entry.key, [])
        variants[:] = [v for v in variants if v is not entry]
        if variants:
            return
        self._variants.pop(entry.key, None)
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

    # purge ---------------------------------------------------------------------------
    def _matching_keys(self, sel: PurgeSelector) -> list[str]:
        if sel.type == "url":
            return [sel.value] if sel.value in self._variants else []
        if sel.type == "host":
            return list(self._by_host.get(sel.value.lower(), ()))
        if sel.type == "tag":
            return list(self._by_tag.get(sel.value, ()))
        if sel.type == "prefix":
            host = sel.value.split("://", 1)[-1].split("/", 1)[0].lower()
            return [k for k in self._by_host.get(host, ()) if k.startswith(sel.value)]
        return list(self._variants)

    def purge(self, selector: PurgeSelector, now: float) -> int:
        count = 0
        for key in self._matching_keys(selector):
            for entry in list(self._variants.get(key, ())):
                if selector.type == "tag" and selector.value not in entry.surrogate_keys:
                    continue
                count += 1
                if selector.soft:
                    # Soft purge: keep the object as a stale validator source; the next
                    # request revalidates (and stale-if-error can still use it).
                    age = entry.freshness.age(now)
                    entry.freshness = replace(
                        entry.freshness,
                        freshness_lifetime=min(entry.freshness.freshness_lifetime, age),
                    )
                else:
                    self.remove(entry)
        return count

    def stats(self) -> dict[str, Any]:
        return {
            "entries": len(self._lru),
            "keys": len(self._variants),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "evictions": self.evictions,
            "rejected": self.rejected,
        }


__all__ = ["Freshness", "MemoryStore"]
