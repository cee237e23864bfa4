"""Asking the first control-plane replica that answers, for the nodes and the DNS router
(aiohttp); which one to ask first is :class:`cdn_core.endpoints.Endpoints`'s call."""

from __future__ import annotations

from typing import Any

import aiohttp

from cdn_core.endpoints import Endpoints, should_fail_over


class NoReplicaAnswered(OSError):
    """Every replica was unreachable, too slow, answered 502/503/504 or not with JSON."""


async def request_first(session: aiohttp.ClientSession, endpoints: Endpoints, method: str,
                        path: str, *, json: Any = None,
                        timeout: aiohttp.ClientTimeout | None = None) -> tuple[int, Any]:
    """``method path`` to each replica in :meth:`Endpoints.order` until one answers;
    returns its status and parsed JSON body (any status but 502, 503 and 504).

    Raises:
        NoReplicaAnswered: none did; the message names each one's failure.
    """
    extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    failures: list[str] = []
    for base in endpoints.order():
        try:
            async with session.request(method, base + path, json=json, **extra) as resp:
                status = resp.status
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            continue
        if should_fail_over(status):
            failures.append(f"HTTP {status}")
            continue
        endpoints.answered(base)
        return status, data
    raise NoReplicaAnswered("no control plane answered: " + "; ".join(failures))
