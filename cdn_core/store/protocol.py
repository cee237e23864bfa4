"""The interface every cache store implements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cdn_core.http_cache import Fields
from cdn_core.store.entry import StoredResponse

PurgeType = Literal["url", "prefix", "host", "tag", "service", "all"]
KEY_SEPARATOR = "\x1f"
"""Ends the URL part of a primary key that goes on (a service's key,
:mod:`cdn_core.services.keys`): ASCII unit separator, never in a normalised URL."""


@dataclass(frozen=True)
class PurgeSelector:
    """What a purge removes: ``url`` (one primary key, all its variants), ``prefix`` (keys
    starting with ``value``), ``host`` (every key of a host), ``tag`` (responses carrying
    surrogate key ``value``), ``service`` (every key of the service ``value``), ``all``.
    Soft purges mark entries stale instead of removing them, so the next request
    revalidates (Fastly's soft purge)."""

    type: PurgeType
    value: str = ""
    soft: bool = False

    def keys(
        self,
        stored: Mapping[str, object],
        by_host: Mapping[str, Iterable[str]],
        by_tag: Mapping[str, Iterable[str]],
    ) -> list[str]:
        """The primary keys this purge reaches among ``stored`` (key -> anything), given
        the store's host and surrogate-key indexes. A ``url`` or ``prefix`` purge names a
        resource, not a scheme: ``http://h/p`` also reaches ``https://h/p`` (each scheme
        is a cache key of its own, RFC 9111 2, but an operator purges the resource)."""
        if self.type == "url":
            exact = [k for k in _both_schemes(self.value) if k in stored]
            # Service keys continue the URL after a separator (cdn_core.services.keys).
            host = self.value.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].lower()
            longer = tuple(k + KEY_SEPARATOR for k in _both_schemes(self.value))
            return exact + [k for k in by_host.get(host, ()) if k.startswith(longer)]
        if self.type == "host":
            return list(by_host.get(self.value.lower(), ()))
        if self.type == "tag":
            return list(by_tag.get(self.value, ()))
        if self.type == "service":
            # every key of one service: the part after the URL (cdn_core.services.keys)
            return [k for k in stored
                    if KEY_SEPARATOR in k and k.split(KEY_SEPARATOR, 2)[1] == self.value]
        if self.type == "prefix":
            host = self.value.split("://", 1)[-1].split("/", 1)[0].lower()
            prefixes = tuple(_both_schemes(self.value))
            return [k for k in by_host.get(host, ()) if k.startswith(prefixes)]
        return list(stored)


def _both_schemes(url: str) -> list[str]:
    _, sep, rest = url.partition("://")
    return [f"http://{rest}", f"https://{rest}"] if sep else [url]


class CacheStore(Protocol):
    # Purges applied so far: a fill that began before a purge must not store what it
    # fetched after the purge reported done (cdn_core.node.filling.filler).
    purges: int

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
