"""The interface every cache store implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cdn_core.http_cache import Fields
from cdn_core.store.entry import StoredResponse

PurgeType = Literal["url", "prefix", "host", "tag", "all"]


@dataclass(frozen=True)
class PurgeSelector:
    """What a purge removes: ``url`` (one primary key, all its variants), ``prefix`` (keys
    starting with ``value``), ``host`` (every key of a host), ``tag`` (responses carrying
    surrogate key ``value``), ``all``. Soft purges mark entries stale instead of removing
    them, so the next request revalidates (Fastly's soft purge)."""

    type: PurgeType
    value: str = ""
    soft: bool = False


class CacheStore(Protocol):
    def lookup(self, key: str, request_fields: Fields) -> StoredResponse | None:
        """The stored variant of ``key`` whose secondary key matches the request, or None."""

    def variants(self, key: str) -> list[StoredResponse]:
        """Every stored variant of ``key`` (for conditional revalidation)."""

    def put(self, entry: StoredResponse) -> bool:
        """Store ``entry`` (replacing the same variant); False when it was not admitted."""

    def remove(self, entry: StoredResponse) -> None:
        """Remove one stored variant, if it is still stored."""

    def purge(self, selector: PurgeSelector, now: float) -> int:
        """Apply a purge; returns the number of stored responses removed or marked stale."""

    def stats(self) -> dict[str, Any]:
        """Counters: ``entries``, ``bytes``, ``max_bytes``, ``evictions``, ``rejected``."""
