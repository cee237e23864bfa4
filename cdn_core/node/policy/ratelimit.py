"""Edge rate limiting: a gate on :class:`cdn_core.node.proxy.handler.CachingProxy` that applies
the control plane's token-bucket policies (:mod:`cdn_core.node.policy.ratelimit_policy`).

Hot path: with no policy at all the gate returns at its first test; with policies, a
request whose host has none and no any-host policy matches its path costs one dict
lookup and a few ``startswith``.

A refused request gets ``429 Too Many Requests`` with ``Retry-After`` (seconds), the
``RateLimit-Policy`` and ``RateLimit`` fields of draft-ietf-httpapi-ratelimit-headers
(``RateLimit-Policy: "burst";q=100;w=60`` and ``RateLimit: "burst";r=0;t=3``: quota,
window, remaining, seconds until a token is back), ``Cache-Control: no-store``, and never
reaches the cache or the upstream, so a 429 is never stored by any tier. Only
enforcing policies appear in those fields; ``shadow`` policies only count
(``cdn_ratelimit_decisions_total{mode="shadow",outcome="limited"}`` and ``/status``).

Counters are per edge (:class:`cdn_core.node.policy.buckets.LocalBuckets`) unless a policy says
``counters: cluster`` and the edge has ``ratelimit.redis_url``: then the request waits
for one Redis round trip (:mod:`cdn_core.node.policy.ratelimit_redis`) and is re-entered into
the proxy once admitted. When Redis is slow or down the edge falls back to its own
counters (fail open) and counts the error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from cdn_core.clock import Clock
from cdn_core.heads import plain_response
from cdn_core.metrics import MetricSet
from cdn_core.node.exchange.channel import Gate, ResponseChannel
from cdn_core.node.exchange.keys import normalize_host, prefix_form
from cdn_core.node.exchange.request import Request
from cdn_core.node.policy.buckets import LocalBuckets, Verdict
from cdn_core.node.policy.ratelimit_policy import RateLimitPolicy
from cdn_core.node.settings.control import RateLimitSettings

log = logging.getLogger("cdn.node.ratelimit")

Spawn = Callable[[Coroutine[Any, Any, Any]], None]
Reenter = Callable[[Request, ResponseChannel], None]


class ClusterBuckets:
    """What :class:`RateLimiter` needs from a shared counter store."""

    async def take(self, key: str, rate: float, capacity: float) -> Verdict:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Rule:
    policy: RateLimitPolicy
    prefix: str
    rate: float
    capacity: float
    cluster: bool
    enforce: bool
    policy_field: bytes  # this policy's item of RateLimit-Policy


def _rule(p: RateLimitPolicy, cluster: bool) -> _Rule:
    window = float(p.window)
    w = int(window) if window.is_integer() else window
    return _Rule(
        p,
        prefix_form(p.path_prefix),
        p.rate,
        float(p.limit),
        cluster and p.counters == "cluster",
        p.mode == "enforce",
        f'"{p.name}";q={p.limit};w={w}'.encode(),
    )


class RateLimiter:
    """Holds the policies and the counters; :meth:`gate` is the proxy gate."""

    def __init__(
        self,
        settings: RateLimitSettings,
        clock: Clock,
        registry: CollectorRegistry,
        tier: str,
        *,
        cluster: ClusterBuckets | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.local = LocalBuckets(settings.max_buckets)
        self.cluster = cluster
        self.spawn: Spawn | None = None
        self.reenter: Reenter | None = None
        self._gates: list[Gate] | None = None
        self.policies: list[RateLimitPolicy] = []
        self._any = False  # any policy at all (the hot-path test)
        self._by_host: dict[str, tuple[_Rule, ...]] = {}
        self._any_host: tuple[_Rule, ...] = ()
        self._admitted: set[int] = set()  # ids of requests admitted by an async check
        # The service a host belongs to, for policies that name one (set by the node
        # when it runs services; cdn_core.node.policy.services).
        self.service_of: Callable[[str], str | None] = lambda host: None
        self.counts: dict[str, dict[str, int]] = {}
        m = MetricSet(registry)
        decisions = m.counter(
            "cdn_ratelimit_decisions_total",
            "Rate-limit decisions on requests that matched a policy",
            ["tier", "mode", "outcome"],
        )
        self._m = {
            (mode, outcome): decisions.labels(tier, mode, outcome)
            for mode in ("enforce", "shadow")
            for outcome in ("allowed", "limited")
        }
        self._redis_errors = m.counter(
            "cdn_ratelimit_redis_errors_total",
            "Cluster-wide rate-limit checks that fell back to per-edge counters",
            ["tier"],
        ).labels(tier)

    def install(self, spawn: Spawn, reenter: Reenter, gates: list[Gate]) -> None:
        """Wire the proxy's task owner and entry point (for cluster-wide checks) and its
        gate list, which holds :meth:`gate` only while a policy exists: with none, the
        hit path does not pay for a call."""
        self.spawn, self.reenter, self._gates = spawn, reenter, gates
        self._place_gate()

    def _place_gate(self) -> None:
        gates = self._gates
        if gates is None:
            return
        if self._any and self.gate not in gates:
            gates.append(self.gate)
        elif not self._any and self.gate in gates:
            gates.remove(self.gate)

    def set_policies(self, policies: list[RateLimitPolicy]) -> None:
        """Replace the policies (buckets of unchanged policies keep their tokens)."""
        cluster = self.cluster is not None
        rules = [_rule(p, cluster) for p in sorted(policies, key=lambda p: p.name)]
        any_host = tuple(r for r in rules if r.policy.host is None)
        by_host: dict[str, tuple[_Rule, ...]] = {}
        for r in rules:
            if r.policy.host is not None:
                by_host[r.policy.host] = by_host.get(r.policy.host, ()) + (r,)
        self._by_host = {h: rs + any_host for h, rs in by_host.items()}
        self._any_host = any_host
        self.policies = list(policies)
        self.counts = {p.name: self.counts.get(p.name, _zero()) for p in policies}
        self._any = bool(rules)
        self._place_gate()
        log.info("rate-limit policies: %s", ", ".join(p.name for p in policies) or "none")

    # -- the gate -------------------------------------------------------------------------

    def gate(self, req: Request, conn: ResponseChannel) -> bool:
        if not self._any:
            return True
        if self._admitted and id(req) in self._admitted:
            self._admitted.discard(id(req))
            return True
        host = normalize_host(req.fields.get("host", ""))
        rules = self._by_host.get(host, self._any_host)
        if not rules:
            return True
        # Gates see the origin-form, normalised target (CachingProxy.handle).
        path = prefix_form(req.target)
        matched: list[tuple[_Rule, str]] = []
        service: str | None = None
        looked = False
        for r in rules:
            if not path.startswith(r.prefix):
                continue
            if r.policy.service is not None:
                if not looked:
                    service, looked = self.service_of(host), True
                if service != r.policy.service:
                    continue
            kind = r.policy.key
            if kind == "client":
                value = req.client
            elif kind == "api_key":
                found = req.fields.get(r.policy.api_key_header)
                if found is None:
                    continue
                value = found
            elif kind == "host":
                value = host
            else:
                value = ""
            matched.append((r, value))
        if not matched:
            return True
        if self.spawn is not None and any(r.cluster for r, _ in matched):
            self.spawn(self._check_cluster(req, conn, matched))
            return False
        now = self.clock.monotonic()
        verdicts = [
            self.local.take((r.policy.name, v), r.rate, r.capacity, now) for r, v in matched
        ]
        return self._decide(req, conn, matched, verdicts)

    async def _check_cluster(
        self, req: Request, conn: ResponseChannel, matched: list[tuple[_Rule, str]]
    ) -> None:
        try:
            verdicts = await self._cluster_verdicts(matched)
            admitted = self._decide(req, conn, matched, verdicts)
        except Exception:  # the catch-all of this asynchronous path: log and answer 500
            log.exception("rate-limit check failed")
            head, body = plain_response(500, "Internal Server Error", "internal error")
            conn.respond(head, b"", body, False)
            return
        if admitted and self.reenter is not None:
            self._admitted.add(id(req))
            try:
                self.reenter(req, conn)
            finally:
                self._admitted.discard(id(req))

    async def _cluster_verdicts(self, matched: list[tuple[_Rule, str]]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for r, value in matched:
            verdict = None
            if r.cluster and self.cluster is not None:
                key = (
                    f"{r.policy.name}:{hashlib.blake2b(value.encode(), digest_size=12).hexdigest()}"
                )
                try:
                    verdict = await asyncio.wait_for(
                        self.cluster.take(key, r.rate, r.capacity), self.settings.redis_timeout
                    )
                except Exception as exc:  # noqa: BLE001 - any Redis failure: count locally
                    self._redis_errors.inc()
                    log.debug("cluster rate-limit check failed: %s", exc)
            if verdict is None:
                now = self.clock.monotonic()
                verdict = self.local.take((r.policy.name, value), r.rate, r.capacity, now)
            verdicts.append(verdict)
        return verdicts

    def _decide(
        self,
        req: Request,
        conn: ResponseChannel,
        matched: list[tuple[_Rule, str]],
        verdicts: list[Verdict],
    ) -> bool:
        refused: list[tuple[_Rule, Verdict]] = []
        for (r, _), v in zip(matched, verdicts, strict=True):
            mode = "enforce" if r.enforce else "shadow"
            outcome = "allowed" if v.allowed else "limited"
            self._m[(mode, outcome)].inc()
            counts = self.counts.get(r.policy.name)
            if counts is not None:
                counts[outcome] += 1
            if not v.allowed and r.enforce:
                refused.append((r, v))
        if not refused:
            return True
        enforced = [(r, v) for (r, _), v in zip(matched, verdicts, strict=True) if r.enforce]
        head, body = too_many_requests(enforced, refused)
        conn.respond(head, b"", body, req.keep_alive)
        return False

    def status(self) -> dict[str, Any]:
        return {
            "policies": len(self.policies),
            "buckets": len(self.local),
            "cluster": self.cluster is not None,
            "by_policy": self.counts,
        }

    async def close(self) -> None:
        if self.cluster is not None:
            await self.cluster.close()


def _zero() -> dict[str, int]:
    return {"allowed": 0, "limited": 0}


def too_many_requests(
    enforced: list[tuple[_Rule, Verdict]], refused: list[tuple[_Rule, Verdict]]
) -> tuple[bytes, bytes]:
    """The head and body of the 429 (RFC 6585 4) with the draft RateLimit fields."""
    retry = max(1, max(math.ceil(v.retry_after) for _, v in refused))
    policy = b", ".join(r.policy_field for r, _ in enforced)
    limits = b", ".join(
        b'"%s";r=%d;t=%d'
        % (
            r.policy.name.encode(),
            v.remaining,
            max(1, math.ceil(v.retry_after)) if not v.allowed else math.ceil(v.reset),
        )
        for r, v in enforced
    )
    body = b"rate limit exceeded: retry in %d s\n" % retry
    head = (
        b"HTTP/1.1 429 Too Many Requests\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"Cache-Control: no-store\r\n"
        b"Retry-After: %d\r\n"
        b"RateLimit-Policy: %s\r\n"
        b"RateLimit: %s\r\n" % (len(body), retry, policy, limits)
    )
    return head, body
