"""Matching, compiled once per version: a rule's :class:`~cdn_core.services.model.Match`
as a :class:`PathMatcher`, and the host map that picks a service by ``Host``
(:class:`HostMap`).

A domain is exact (``www.example.com``) or a wildcard (``*.example.com``: any name under
``example.com``, at any depth, never ``example.com`` itself). An exact domain beats a
wildcard, and a longer wildcard beats a shorter one (``*.eu.example.com`` before
``*.example.com``), as CloudFront and Fastly resolve overlapping names.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from cdn_core.services.model import Match

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PathMatcher:
    """A compiled :class:`~cdn_core.services.model.Match`: every condition that is not
    None must hold."""

    prefix: str | None
    pattern: re.Pattern[str] | None
    regex: re.Pattern[str] | None
    methods: frozenset[str] | None
    statuses: frozenset[int] | None

    @classmethod
    def compile(cls, match: Match) -> PathMatcher:
        return cls(
            match.path_prefix,
            re.compile(fnmatch.translate(match.glob)) if match.glob else None,
            re.compile(match.regex) if match.regex else None,
            frozenset(match.methods) if match.methods else None,
            frozenset(match.statuses) if match.statuses else None,
        )

    def request(self, method: str, path: str) -> bool:
        """Whether the request conditions (method, path) hold."""
        if self.methods is not None and method not in self.methods:
            return False
        if self.prefix is not None and not path.startswith(self.prefix):
            return False
        if self.pattern is not None and not self.pattern.match(path):
            return False
        return self.regex is None or self.regex.search(path) is not None

    def response(self, method: str, path: str, status: int) -> bool:
        """Whether every condition holds for a response of ``status``."""
        return (self.statuses is None or status in self.statuses) and self.request(method, path)

    def covers(self, other: PathMatcher) -> bool:
        """Whether this matcher matches every request and response ``other`` matches
        (conservatively: False when that cannot be told without trying paths). Used to
        find rules that can never match because an earlier one takes all they would."""
        if self.pattern is not None or self.regex is not None:
            return False
        if self.methods is not None and (other.methods is None or other.methods - self.methods):
            return False
        if self.statuses is not None and (
            other.statuses is None or other.statuses - self.statuses
        ):
            return False
        if self.prefix is None:
            return True
        return other.prefix is not None and other.prefix.startswith(self.prefix)


class HostMap(Generic[T]):
    """Host name -> value (a service), by exact name, else the longest wildcard.

    ``entries`` maps domains (lower case, as :func:`~cdn_core.services.model.is_domain`
    accepts) to values. :meth:`lookup` takes a normalised host (lower case, no port, no
    trailing dot: :func:`cdn_core.node.exchange.keys.normalize_host`).
    """

    __slots__ = ("_exact", "_wild")

    def __init__(self, entries: Mapping[str, T]) -> None:
        self._exact: dict[str, T] = {}
        self._wild: dict[str, T] = {}
        for domain, value in entries.items():
            if domain.startswith("*."):
                self._wild[domain[2:]] = value
            else:
                self._exact[domain] = value

    def lookup(self, host: str) -> T | None:
        found = self._exact.get(host)
        if found is not None or not self._wild:
            return found
        dot = host.find(".")
        while dot != -1:
            found = self._wild.get(host[dot + 1:])
            if found is not None:
                return found
            dot = host.find(".", dot + 1)
        return None
