"""The stored response: what a cache keeps for one variant of one cache key."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdn_core.http_cache.cache_control import CacheControl
from cdn_core.http_cache.decision import Freshness
from cdn_core.http_cache.vary import VaryKey

# What one stored entry costs beyond its head and body bytes, measured with tracemalloc
# (CPython 3.11, 64-bit) by ``python -m bench.hit_ratio.memory --overhead``: responses
# built by the node's ``build_entry`` stored into a MemoryStore, allocated bytes per entry
# fitted by least squares over header count, header text and key length (residual under
# 20 bytes). It covers the StoredResponse, its headers list, (name, value) tuples and
# strings, the lower-cased ``fields`` dict, CacheControl and Freshness objects, the
# ``bytes`` object headers of head and body, and the store's per-entry slots (variants
# dict and list, policy queue node, host index, frequency sketch share); 700 measured,
# plus the two slots of the memoised hit lines (the lines themselves, about 100 bytes,
# exist only for entries hit while fresh and are not charged).
ENTRY_OVERHEAD_BYTES = 716  # fixed part, including a key of up to KEY_INCLUDED chars
KEY_INCLUDED = 64
HEADER_OVERHEAD_BYTES = 240  # per stored header line, plus 2 x name + 1 x value chars
TAG_OVERHEAD_BYTES = 380  # per surrogate key (unique ones: frozenset slot, tag index set), + length
# Shared by every untagged entry: an empty frozenset per entry would be one more object
# for the cyclic garbage collector to walk (cdn_core.gc_schedule).
NO_SURROGATE_KEYS: frozenset[str] = frozenset()


@dataclass(slots=True, eq=False)
class StoredResponse:
    """One stored response (a single variant).

    ``key`` is the primary cache key (``scheme://host/path?query``, RFC 9111 2);
    ``vary_names``/``vary_key`` the secondary key (4.1). ``headers`` are the stored
    end-to-end header lines as ``(name, value)`` strings, without ``Age`` and
    ``Content-Length``; ``fields`` maps lower-case names to combined values. ``head`` is
    the pre-serialised status line and header lines (ending in CRLF, without the blank line),
    including ``Content-Length`` and this tier's ``Via``: only ``Age`` and
    ``Cache-Status`` are written per request. ``size`` is the bytes charged to the store.
    """

    key: str
    host: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    fields: dict[str, str]
    body: bytes
    cc: CacheControl
    freshness: Freshness
    vary_names: tuple[str, ...] = ()
    vary_key: VaryKey = ()
    surrogate_keys: frozenset[str] = NO_SURROGATE_KEYS
    head: bytes = b""
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None
    hits: int = field(default=0)
    # The optimiser's verdict on this object's type ("fixed", "text", "image"...),
    # computed once at the first hit (cdn_core.optimize.transform.Transformer.kind).
    opt_kind: str | None = None
    # A fresh hit's Age and Cache-Status lines and the instant they stop being right
    # (cdn_core.node.proxy.delivery.ResponseWriter.fresh_hit_lines); 0.0: not made yet.
    hit_lines: bytes = b""
    hit_lines_until: float = 0.0

    def set_freshness(self, freshness: Freshness) -> None:
        """Replace the timing facts (a soft purge); the memoised hit lines go with them."""
        self.freshness = freshness
        self.hit_lines_until = 0.0

    def compute_size(self) -> int:
        """Bytes charged to the store: head + body + measured overhead (see above)."""
        size = len(self.head) + len(self.body) + ENTRY_OVERHEAD_BYTES
        if len(self.key) > KEY_INCLUDED:
            size += len(self.key) - KEY_INCLUDED
        for name, value in self.headers:
            size += HEADER_OVERHEAD_BYTES + 2 * len(name) + len(value)
        for tag in self.surrogate_keys:
            size += TAG_OVERHEAD_BYTES + len(tag)
        return size
