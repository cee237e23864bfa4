"""Counts shared by every client connection of a node, whatever protocol carries it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


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
