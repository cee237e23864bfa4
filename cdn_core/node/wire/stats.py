"""Counts shared by every client connection of a node, whatever protocol carries it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from cdn_core.node.settings.limits import LimitSettings


@dataclass
class ServerStats:
    """Live counts shared by every connection of a node (for ``/status`` and the router's
    load decisions)."""

    connections: int = 0
    requests: int = 0
    bad_requests: int = 0
    per_client: dict[str, int] = field(default_factory=dict)
    # Called with a short reason each time a client is refused or timed out (for metrics
    # and rate-limited logging): "connections-total", "header-timeout", "bad-request"...
    on_refuse: Callable[[str], None] = field(default=lambda reason: None)
    # Called with each accepted transport (edges measure client RTT from it), or None.
    on_connect: Callable[[asyncio.BaseTransport], None] | None = None

    def admit(self, client: str, limits: LimitSettings) -> str | None:
        """Count a new connection from ``client``; the refusal reason when it is over
        ``limits.max_connections`` or ``max_connections_per_client`` (the connection
        is still counted until :meth:`release`)."""
        self.connections += 1
        count = self.per_client.get(client, 0) + 1
        self.per_client[client] = count
        if self.connections > limits.max_connections:
            return "connections-total"
        if count > limits.max_connections_per_client:
            return "connections-per-client"
        return None

    def release(self, client: str) -> None:
        """A connection counted by :meth:`admit` has closed."""
        self.connections -= 1
        left = self.per_client.get(client, 1) - 1
        if left > 0:
            self.per_client[client] = left
        else:
            self.per_client.pop(client, None)
