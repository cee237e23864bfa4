"""Every problem of a service document, each with its field path (``cache_rules[2].ttl:
Input should be greater than or equal to 0``), as ``validate`` and a rejected ``apply``
report them: the field checks of :mod:`cdn_core.services.model`, then checks across
rules and across services that no single field can make:

- a domain another service already has (a domain belongs to one service);
- a cache rule or redirect that can never match, because an earlier one takes every
  request it would (first match wins);
- a redirect to a path its own rule matches again (a loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cdn_core.services.matching import PathMatcher
from cdn_core.services.model import ServiceSpec


@dataclass(frozen=True, slots=True)
class Problem:
    """One error: ``path`` is the field (``""`` for the whole document)."""

    path: str
    message: str

    def line(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def field_path(loc: tuple[Any, ...]) -> str:
    """pydantic's error location as a path: ``("cache_rules", 1, "ttl")`` ->
    ``cache_rules[1].ttl``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate(doc: Any, taken: Mapping[str, str] | None = None
             ) -> tuple[ServiceSpec | None, list[Problem]]:
    """Check a service document (JSON-shaped). ``taken`` maps the domains of every
    *other* service to its name. Returns the spec and no problems, or None and every
    problem found (all field errors at once; the cross checks only once the fields are
    valid)."""
    if not isinstance(doc, dict):
        return None, [Problem("", "a service document is a mapping of fields")]
    try:
        spec = ServiceSpec.model_validate(doc)
    except ValidationError as exc:
        return None, [Problem(field_path(tuple(e["loc"])),
                              e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    problems = _across(spec, taken or {})
    return (None if problems else spec), problems


def _across(spec: ServiceSpec, taken: Mapping[str, str]) -> list[Problem]:
    out = [Problem(f"domains[{i}]", f"{d} belongs to service {taken[d]}")
           for i, d in enumerate(spec.domains) if d in taken and taken[d] != spec.name]
    cache = [PathMatcher.compile(r.match) for r in spec.cache_rules]
    for j, later in enumerate(cache):
        i = next((i for i in range(j) if cache[i].covers(later)), None)
        if i is not None:
            out.append(Problem(f"cache_rules[{j}].match", f"can never match: cache_rules[{i}] "
                               "comes first and takes every request it would"))
    redirects = [(i, PathMatcher.compile(r.match), r.redirect)
                 for i, r in enumerate(spec.request_rules) if r.redirect is not None]
    for n, (j, later, _) in enumerate(redirects):
        earlier = next((i for i, m, r in redirects[:n]
                        if r is not None and not r.https and m.covers(later)), None)
        if earlier is not None:
            out.append(Problem(f"request_rules[{j}].match", f"can never match: the redirect "
                               f"of request_rules[{earlier}] takes every request it would"))
    for j, matcher, redirect in redirects:
        if redirect is None or redirect.to is None or not redirect.to.startswith("/"):
            continue
        target = redirect.to.split("?", 1)[0]
        methods = sorted(matcher.methods) if matcher.methods else ["GET"]
        if any(matcher.request(m, target) for m in methods):
            out.append(Problem(f"request_rules[{j}].redirect.to", f"redirect loop: {target} "
                               "matches this rule again"))
    return out
