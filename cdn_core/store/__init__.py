"""Cache storage: the :class:`CacheStore` protocol, the stored-response type, the
byte-bounded :class:`MemoryStore` (policies: LRU, W-TinyLFU, S3-FIFO) and the optional
on-disk tier."""

from cdn_core.store.disk import DiskTier
from cdn_core.store.entry import StoredResponse
from cdn_core.store.memory import MemoryStore
from cdn_core.store.protocol import CacheStore, PurgeSelector

__all__ = ["CacheStore", "DiskTier", "MemoryStore", "PurgeSelector", "StoredResponse"]
