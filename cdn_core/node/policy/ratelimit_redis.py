"""Cluster-wide token buckets in Redis (redis-py asyncio), for policies with
``counters: cluster`` on edges that have ``ratelimit.redis_url``.

One Lua script refills and takes a token atomically, with Redis's own clock (``TIME``)
so that every edge agrees on time; each bucket is a hash ``{t: tokens, ts: seconds}``
under ``cdn:rl:<policy>:<hashed key>`` that expires once it would be full again.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from cdn_core.errors import CdnError
from cdn_core.node.policy.buckets import Verdict, verdict
from cdn_core.node.policy.ratelimit import ClusterBuckets

TAKE = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then
  tokens = cap
else
  tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisUnavailable(CdnError):
    """A Redis call failed (the message says how)."""


class RedisBuckets(ClusterBuckets):
    def __init__(self, url: str, *, prefix: str = "cdn:rl:") -> None:
        self._client: Any = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        self._script = self._client.register_script(TAKE)
        self._prefix = prefix

    async def take(self, key: str, rate: float, capacity: float) -> Verdict:
        try:
            allowed, tokens = await self._script(keys=[self._prefix + key], args=[rate, capacity])
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return verdict(bool(int(allowed)), float(tokens), rate, capacity)

    async def close(self) -> None:
        await self._client.aclose()
