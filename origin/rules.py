"""Per-path response policy: which ``Cache-Control`` and ``Surrogate-Key`` a file gets.

Pure: a :class:`RuleSet` is built once from the configured rules and answers lookups by
relative path. See :class:`origin.config.CacheRule` for the matching semantics.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from origin.config import CacheRule


@dataclass(frozen=True, slots=True)
class PathPolicy:
    """Headers for one path: ``None`` means "do not send that header"."""

    cache_control: str | None
    surrogate_key: str | None


class RuleSet:
    """Ordered glob rules compiled once; :meth:`lookup` costs one regex match per rule."""

    def __init__(self, rules: Iterable[CacheRule]) -> None:
        self._rules = tuple((re.compile(fnmatch.translate(rule.match)), rule) for rule in rules)

    def lookup(self, relpath: str) -> PathPolicy:
        """The policy for ``relpath`` (relative to the root, ``/``-separated, no leading
        slash): ``Cache-Control`` from the first matching rule that sets one; surrogate
        keys of all matching rules in order, duplicates dropped, space-separated."""
        cache_control: str | None = None
        keys: list[str] = []
        for pattern, rule in self._rules:
            if pattern.match(relpath) is None:
                continue
            if cache_control is None:
                cache_control = rule.cache_control
            for key in rule.surrogate_keys:
                if key not in keys:
                    keys.append(key)
        return PathPolicy(cache_control=cache_control, surrogate_key=" ".join(keys) or None)
