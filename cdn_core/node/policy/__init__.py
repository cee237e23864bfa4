"""Tier policy installed as gates in front of the request path: rate limiting and signed
URLs at edges, the operator's failover override at mid tiers. A gate sees each request
first and either lets it through or answers it on the channel itself.

May import: :mod:`cdn_core.node.settings`, :mod:`cdn_core.node.exchange`,
:mod:`cdn_core.node.proxy` (the failover gate reads the proxy's store).
"""
