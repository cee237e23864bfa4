"""The caching-proxy runtime shared by edges and mid tiers (the tier is configuration).

Sub-packages, each importing only those listed before it (ARCHITECTURE.md; enforced by
``tests/unit/test_dependency_rules.py``):

- :mod:`~cdn_core.node.settings`: pydantic models of a node's configuration;
- :mod:`~cdn_core.node.exchange`: the wire-neutral request, response channel, cache keys
  and stored-response construction;
- :mod:`~cdn_core.node.wire`: protocol adapters on asyncio transports (HTTP/1.1) and TLS;
- :mod:`~cdn_core.node.observe`: metrics, the access log, client RTTs;
- :mod:`~cdn_core.node.filling`: the upstream pool, request collapsing, fills;
- :mod:`~cdn_core.node.proxy`: the request path (lookup, decision, delivery);
- :mod:`~cdn_core.node.policy`: gates in front of it (rate limits, signed URLs, failover);
- :mod:`~cdn_core.node.control`: the link to the control plane and its admin routes.

The modules here assemble them, in this order too: :mod:`~cdn_core.node.app` (the
:class:`Node` factory), :mod:`~cdn_core.node.workers` (several worker processes on one
port) and :mod:`~cdn_core.node.cli` (``python -m edge|mid_tier``).
"""
