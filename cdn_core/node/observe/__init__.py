"""What a node tells about itself: Prometheus metrics (bounded labels), the sampled JSON
access log, and client RTTs measured on real connections (reported to the DNS router).

May import: :mod:`cdn_core.node.settings`, :mod:`cdn_core.node.exchange`,
:mod:`cdn_core.metrics`.
"""
