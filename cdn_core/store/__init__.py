"""Cache storage: the :class:`CacheStore` protocol and the stored-response type."""

from cdn_core.store.entry import StoredResponse
from cdn_core.store.memory import MemoryStore
from cdn_core.store.protocol import CacheStore, PurgeSelector

__all__ = ["CacheStore", "MemoryStore", "PurgeSelector", "StoredResponse"]
