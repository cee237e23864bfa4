"""A service version compiled for the request path: matchers built once at activation,
and the decisions for a (method, path) memoised, so that a hit costs a dictionary lookup
whatever the number of rules (issue 20: 100 services with 1,000 rules may cost the hit
path at most 5%).

:class:`CompiledService` answers the three questions a node asks of a service:
- before the cache: :meth:`~CompiledService.request_plan` (a redirect to answer at once,
  or the fields and path to send toward the origin) and whether the cache is bypassed;
- when a response arrives: :meth:`~CompiledService.cache_rule` (the freshness to apply or
  not to store);
- toward the client: :meth:`~CompiledService.response_edits` (fields set and removed)
  and :meth:`~CompiledService.error_page`.
:class:`ServiceSet` is every active service of a node, with the host map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cdn_core.services.keys import KeyRule, service_key
from cdn_core.services.matching import HostMap, PathMatcher
from cdn_core.services.model import CacheRule, ServiceSpec

MEMO_ENTRIES = 4096  # decisions kept per service; beyond it the memo starts again


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """What to do with a request before the cache. ``redirect`` is ``(status, Location)``
    to answer at the edge (nothing else applies then); otherwise ``set_fields`` and
    ``remove_fields`` (lower-case names) change what goes to the origin and ``path`` is the
    path sent there (after rewrites). ``bypass``: no lookup and no store (pass to the
    origin), from a cache rule with ``action: bypass``."""

    redirect: tuple[int, str] | None = None
    set_fields: tuple[tuple[str, str], ...] = ()
    remove_fields: frozenset[str] = frozenset()
    path: str | None = None
    bypass: bool = False


NO_CHANGE = RequestPlan()


@dataclass(frozen=True, slots=True)
class ResponseEdits:
    """Fields set (in order) and removed (lower-case) on a response toward the client."""

    set_fields: tuple[tuple[str, str], ...] = ()
    remove_fields: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.set_fields or self.remove_fields)


NO_EDITS = ResponseEdits()


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the request path needs of a service for one request line: the plan, the
    cache key (without the secondary part, :meth:`~cdn_core.services.keys.KeyRule.secondary`,
    when the service keys on fields), and the path and query the rules match."""

    plan: RequestPlan
    key: str
    path: str
    query: str


@dataclass(frozen=True, slots=True)
class _Redirect:
    status: int
    to: str | None  # None: the same URL over https
    keep_query: bool

    def location(self, host: str, path: str, query: str) -> str:
        base = f"https://{host}{path}" if self.to is None else self.to
        if self.keep_query and query:
            base += ("&" if "?" in base else "?") + query
        return base


@dataclass(frozen=True, slots=True)
class _Change:
    set_fields: tuple[tuple[str, str], ...]
    remove_fields: frozenset[str]
    rewrite: tuple[str, str] | None


@dataclass
class CompiledService:
    """One version of one service, ready for the request path (see the module
    docstring). Build with :meth:`compile`; immutable once built except for the memos."""

    spec: ServiceSpec
    version: int
    key: KeyRule
    _cache: tuple[tuple[PathMatcher, CacheRule], ...]
    _bypass: tuple[tuple[PathMatcher, bool], ...]
    _requests: tuple[tuple[PathMatcher, _Redirect | _Change, bool], ...]
    _responses: tuple[tuple[PathMatcher, ResponseEdits], ...]
    _plans: dict[tuple[str, str, str], RequestPlan | _Redirect] = field(default_factory=dict)
    _edits: dict[tuple[str, str, int], ResponseEdits] = field(default_factory=dict)
    _rules: dict[tuple[str, str, int], CacheRule | None] = field(default_factory=dict)
    _prepared: dict[tuple[str, str, str, str], Prepared] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def __post_init__(self) -> None:
        # Read on every request: plain attributes rather than properties.
        self.edits_responses = bool(self._responses or self.spec.error_pages)
        """Whether responses toward clients change (response rules or error pages)."""
        self.keys_fields = bool(self.key.headers or self.key.cookies)
        """Whether the cache key has a secondary part from request fields or cookies."""

    @classmethod
    def compile(cls, spec: ServiceSpec, version: int) -> CompiledService:
        cache = tuple((PathMatcher.compile(r.match), r) for r in spec.cache_rules)
        # At request time only rules without status conditions can decide (a bypass rule
        # never has them: model validation).
        bypass = tuple((m, r.action == "bypass") for m, r in cache if m.statuses is None)
        requests: list[tuple[PathMatcher, _Redirect | _Change, bool]] = []
        for rule in spec.request_rules:
            m = PathMatcher.compile(rule.match)
            r = rule.redirect
            if r is not None:
                requests.append((m, _Redirect(r.status, r.to, r.keep_query), r.https))
            else:
                rewrite = (rule.rewrite.prefix, rule.rewrite.to) if rule.rewrite else None
                requests.append((m, _Change(tuple(rule.set_headers.items()),
                                            frozenset(h.lower() for h in rule.remove_headers),
                                            rewrite), False))
        responses = tuple(
            (PathMatcher.compile(r.match), ResponseEdits(
                tuple(r.set_headers.items()), frozenset(h.lower() for h in r.remove_headers)))
            for r in spec.response_rules
        )
        return cls(spec, version, KeyRule.compile(spec.cache_key), cache, bypass,
                   tuple(requests), responses)

    def prepare(self, method: str, scheme: str, host: str, target: str) -> Prepared:
        """The plan and cache key for a request line (normalised host and target),
        memoised: a hit costs one dictionary lookup here however many rules there are."""
        memo_key = (method, scheme, host, target)
        found = self._prepared.get(memo_key)
        if found is None:
            path, _, query = target.partition("?")
            plan = self.request_plan(method, scheme, host, path, query)
            key = service_key(self.spec.name, scheme, host, path, query, self.key)
            found = Prepared(plan, key, path, query)
            if len(self._prepared) >= MEMO_ENTRIES:
                self._prepared.clear()
            self._prepared[memo_key] = found
        return found

    def full_key(self, prep: Prepared, field: Callable[[str], str | None]) -> str:
        """The whole cache key of a prepared request: ``prep.key`` plus the secondary
        part from the request's fields (``field(name)``) when the service keys on them.
        (The proxy's hit path tests :attr:`keys_fields` itself before calling this.)"""
        return prep.key + self.key.secondary(field) if self.keys_fields else prep.key

    def request_plan(self, method: str, scheme: str, host: str, path: str,
                     query: str = "") -> RequestPlan:
        """The :class:`RequestPlan` for a request. The rules' decision is memoised by
        method, scheme and path; a redirect's Location is built per request (it carries
        the host and query)."""
        memo_key = (method, scheme, path)
        plan = self._plans.get(memo_key)
        if plan is None:
            plan = self._plan(method, scheme, path)
            if len(self._plans) >= MEMO_ENTRIES:
                self._plans.clear()
            self._plans[memo_key] = plan
        if isinstance(plan, _Redirect):
            return RequestPlan(redirect=(plan.status, plan.location(host, path, query)))
        return plan

    def _plan(self, method: str, scheme: str, path: str) -> RequestPlan | _Redirect:
        sets: list[tuple[str, str]] = []
        removes: set[str] = set()
        new_path = path
        for matcher, action, to_https in self._requests:
            if not matcher.request(method, path):
                continue
            if isinstance(action, _Redirect):
                if to_https and scheme == "https":
                    continue
                return action
            sets += action.set_fields
            removes |= action.remove_fields
            if action.rewrite is not None and new_path.startswith(action.rewrite[0]):
                new_path = action.rewrite[1] + new_path[len(action.rewrite[0]):]
        bypass = next((b for m, b in self._bypass if m.request(method, path)), False)
        if not sets and not removes and new_path == path and not bypass:
            return NO_CHANGE
        return RequestPlan(None, tuple(sets), frozenset(removes),
                           new_path if new_path != path else None, bypass)

    def cache_rule(self, method: str, path: str, status: int) -> CacheRule | None:
        """The first cache rule matching the request and the response status, or None
        (the origin's headers alone decide, RFC 9111)."""
        memo_key = (method, path, status)
        if memo_key in self._rules:
            return self._rules[memo_key]
        rule = next((r for m, r in self._cache if m.response(method, path, status)), None)
        if len(self._rules) >= MEMO_ENTRIES:
            self._rules.clear()
        self._rules[memo_key] = rule
        return rule

    def response_edits(self, method: str, path: str, status: int) -> ResponseEdits:
        """Every matching response rule's fields, in rule order (a later set wins over an
        earlier one for the same name; removes apply before sets)."""
        if not self._responses:
            return NO_EDITS
        memo_key = (method, path, status)
        edits = self._edits.get(memo_key)
        if edits is None:
            sets: list[tuple[str, str]] = []
            removes: set[str] = set()
            for matcher, e in self._responses:
                if matcher.response(method, path, status):
                    sets += e.set_fields
                    removes |= e.remove_fields
            edits = ResponseEdits(tuple(sets), frozenset(removes)) if sets or removes \
                else NO_EDITS
            if len(self._edits) >= MEMO_ENTRIES:
                self._edits.clear()
            self._edits[memo_key] = edits
        return edits

    def error_page(self, status: int) -> str | None:
        """The body the service sends instead of the origin's for ``status``, or None."""
        return self.spec.error_pages.get(status)


class ServiceSet:
    """The services a node runs, each at one version: ``select(host)`` by host name
    (:class:`~cdn_core.services.matching.HostMap`). Immutable: a node builds a new set
    and swaps it in at once, so a request sees one version of a service throughout."""

    __slots__ = ("services", "_hosts", "by_host")

    def __init__(self, services: Mapping[str, CompiledService]) -> None:
        self.services = dict(services)
        self._hosts: HostMap[CompiledService] = HostMap(
            {d: s for s in self.services.values() for d in s.spec.domains})
        self.by_host: dict[str, CompiledService | None] = {}
        """Hosts already looked up (the hit path reads it first)."""

    def select(self, host: str) -> CompiledService | None:
        """The service for a normalised host name, or None (421 Misdirected Request,
        RFC 9110 15.5.20); remembered in :attr:`by_host`."""
        if host in self.by_host:
            return self.by_host[host]
        found = self._hosts.lookup(host)
        if len(self.by_host) >= MEMO_ENTRIES:
            self.by_host.clear()
        self.by_host[host] = found
        return found

    def versions(self) -> dict[str, int]:
        """``{service: version}`` (what a node reports in its heartbeat)."""
        return {name: s.version for name, s in self.services.items()}

