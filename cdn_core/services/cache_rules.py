"""A service's cache rule applied to an origin response's fields, before the node decides
whether and how long to store it (RFC 9111 3, 4.2).

The rule's policy is written as this tier's targeted field (RFC 9213: the first name of
the node's ``cache.targeted_fields``, ``CDN-Cache-Control`` by default), which then
governs every tier behind the origin and is removed toward clients by the edges that
strip targeted fields; ``Cache-Control`` for browsers is left as the origin sent it. A
tier without targeted fields gets the policy in ``Cache-Control``.

- ``mode: override``: the rule's ``ttl`` (as ``max-age``) and stale times replace the
  origin's; ``no-store`` and ``no-cache`` go, ``private`` stays (a response marked
  private may be one client's own, and no rule makes it shared);
- ``mode: default``: only a response with no freshness lifetime of its own (no
  ``max-age``/``s-maxage`` in the governing field, no ``Expires``) gets the rule's;
- ``action: no_store``: the response is not stored (``no-store``).
"""

from __future__ import annotations

from collections.abc import Sequence

from cdn_core.services.model import CacheRule

_LIFETIME = frozenset({"max-age", "s-maxage"})
_REPLACED = frozenset({"max-age", "s-maxage", "no-store", "no-cache", "stale-while-revalidate",
                       "stale-if-error"})


def _directives(value: str) -> list[str]:
    return [d.strip() for d in value.split(",") if d.strip()]


def _name(directive: str) -> str:
    return directive.split("=", 1)[0].strip().lower()


def apply_cache_rule(rule: CacheRule, headers: list[tuple[str, str]],
                     targeted: Sequence[str]) -> list[tuple[str, str]]:
    """``headers`` (an origin response's fields, in order) as ``rule`` makes them for a
    tier obeying ``targeted`` (lower- or mixed-case names, first wins). Unchanged when the
    rule changes nothing (a ``default`` rule for a response with its own lifetime)."""
    lower = [t.lower() for t in targeted]
    governing = next((n for n in lower if any(h.lower() == n for h, _ in headers)),
                     "cache-control")
    current = ", ".join(v for h, v in headers if h.lower() == governing)
    kept = _directives(current)
    if rule.action == "no_store":
        policy = ["no-store"]
    else:
        ours = []
        if rule.ttl is not None:
            ours.append(f"max-age={int(rule.ttl)}")
        if rule.stale_while_revalidate is not None:
            ours.append(f"stale-while-revalidate={int(rule.stale_while_revalidate)}")
        if rule.stale_if_error is not None:
            ours.append(f"stale-if-error={int(rule.stale_if_error)}")
        if rule.mode == "default":
            has_lifetime = any(_name(d) in _LIFETIME for d in kept) or (
                governing == "cache-control" and any(h.lower() == "expires" for h, _ in headers))
            if has_lifetime or not ours:
                return headers
            policy = kept + ours
        else:
            replaced = {_name(d) for d in ours} | ({"no-store", "no-cache"} if rule.ttl else set())
            if rule.ttl is not None:
                replaced |= _LIFETIME
            policy = [d for d in kept if _name(d) not in replaced & _REPLACED] + ours
    target = lower[0] if lower else "cache-control"
    name = targeted[0] if targeted else "Cache-Control"
    # The governing targeted field gives way to ours; Cache-Control stays for browsers.
    gone = {target, governing} - ({"cache-control"} if target != "cache-control" else set())
    out = [(h, v) for h, v in headers if h.lower() not in gone]
    if rule.mode == "override" and rule.ttl is not None:
        # max-age wins over Expires for caches anyway (RFC 9111 5.3); drop the noise.
        out = [(h, v) for h, v in out if h.lower() != "expires" or target != "cache-control"]
    out.append((name, ", ".join(policy)))
    return out
