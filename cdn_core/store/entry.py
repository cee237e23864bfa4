"""The stored response: what a cache keeps for one variant of one cache key."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdn_core.http_cache.cache_control import CacheControl
from cdn_core.http_cache.decision import Freshness
from cdn_core.http_cache.vary import VaryKey

# Measured with sys.getsizeof on the entry, its lists and dicts (CPython 3.11, 64-bit):
# the fixed cost of one entry beyond its head and body bytes.
ENTRY_OVERHEAD_BYTES = 1200


@dataclass(slots=True)
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
    surrogate_keys: frozenset[str] = frozenset()
    head: bytes = b""
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None
    hits: int = field(default=0)

    def compute_size(self) -> int:
        return len(self.head) + len(self.body) + ENTRY_OVERHEAD_BYTES
