"""The eviction and admission policies by name (``cache.policy``): LRU, W-TinyLFU,
S3-FIFO and the size split (W-TinyLFU for small objects, LRU for large), each behind
the :class:`~cdn_core.store.policy.Policy` protocol."""

from __future__ import annotations

from cdn_core.store.policy import (
    POLICIES,
    EvictCallback,
    FreqHash,
    Policy,
    PolicyName,
    ignore_eviction,
)
from cdn_core.store.policy_lru import LRUPolicy
from cdn_core.store.policy_s3fifo import S3FIFOPolicy
from cdn_core.store.policy_sizesplit import SizeSplitPolicy
from cdn_core.store.policy_wtinylfu import WTinyLFUPolicy


def make_policy(
    name: PolicyName,
    max_bytes: int,
    on_evict: EvictCallback | None = None,
    *,
    freq_hash: FreqHash = hash,
) -> Policy:
    """The policy called ``name``. ``freq_hash(key)`` gives a resident key's ``fh``.

    Raises:
        ValueError: ``name`` is not one of :data:`~cdn_core.store.policy.POLICIES`.
    """
    cb = on_evict or ignore_eviction
    if name == "lru":
        return LRUPolicy(max_bytes, cb)
    if name == "wtinylfu":
        return WTinyLFUPolicy(max_bytes, cb, freq_hash=freq_hash)
    if name == "s3fifo":
        return S3FIFOPolicy(max_bytes, cb, freq_hash=freq_hash)
    if name == "sizesplit":
        return SizeSplitPolicy(max_bytes, cb, freq_hash=freq_hash)
    raise ValueError(f"unknown cache policy {name!r}; expected one of {', '.join(POLICIES)}")
