"""What changed between two versions of a service, by field path, as ``cdnctl services
diff NAME A B`` and ``cdnctl services apply`` print it (Fastly's version diff)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(none)"})()


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: ``path`` (``cache_rules[1].ttl``), the value before and after
    (:data:`MISSING` where the field is absent on that side)."""

    path: str
    old: Any
    new: Any

    def line(self) -> str:
        if self.old is MISSING:
            return f"+ {self.path}: {self.new!r}"
        if self.new is MISSING:
            return f"- {self.path}: {self.old!r}"
        return f"~ {self.path}: {self.old!r} -> {self.new!r}"


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in value:
            _leaves(value[key], f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            _leaves(item, f"{path}[{i}]", out)
    else:
        out[path] = value


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every leaf that differs between two documents (JSON-shaped: dicts, lists,
    scalars), in the order of ``old`` then the additions of ``new``. Lists compare by
    position: inserting a rule shows as changes to the rules after it, as rule order is
    meaning."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _leaves(old, "", a)
    _leaves(new, "", b)
    out = [Change(p, v, b.get(p, MISSING)) for p, v in a.items() if b.get(p, MISSING) != v]
    out += [Change(p, MISSING, v) for p, v in b.items() if p not in a]
    return out
