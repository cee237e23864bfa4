"""Rendezvous (highest-random-weight) hashing: every node scores every key and the key
goes to the highest score (Thaler & Ravishankar 1998). Removing a node moves only the keys
it owned; adding it back moves exactly those keys back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def score(node_id: str, key: str) -> int:
    """A 64-bit pseudo-random weight for ``(node_id, key)``; stable across processes."""
    digest = hashlib.blake2b(f"{node_id}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(key: str, nodes: Sequence[T], node_id: Callable[[T], str] = str) -> list[T]:
    """``nodes`` ordered by descending score for ``key``: the first is the owner, the rest
    are the fail-over order."""
    return sorted(nodes, key=lambda n: score(node_id(n), key), reverse=True)
