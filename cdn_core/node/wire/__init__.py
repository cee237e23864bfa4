"""The client side of a connection: protocol adapters that parse requests into
:class:`~cdn_core.node.exchange.request.Request` and implement
:class:`~cdn_core.node.exchange.channel.ResponseChannel` (framing, keep-alive, timeouts,
limits, back-pressure), and the TLS listeners' contexts. HTTP/1.1 on llhttp today; other
protocols plug in beside it and hand their requests to the same handler.

May import: :mod:`cdn_core.node.settings`, :mod:`cdn_core.node.exchange`. Never the request
path (:mod:`cdn_core.node.proxy`): the handler is passed in.
"""
