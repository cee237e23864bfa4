"""The request path that decides what to answer: cache lookup, freshness decision,
delivery of stored and streaming responses (preconditions, ranges, HEAD), pass-through
of methods the cache does not answer, and content optimisation at edges. It takes a
:class:`~cdn_core.node.exchange.request.Request` and writes to a
:class:`~cdn_core.node.exchange.channel.ResponseChannel`, never knowing which protocol
carried the request.

May import: :mod:`cdn_core.node.settings`, :mod:`cdn_core.node.exchange`,
:mod:`cdn_core.node.observe`, :mod:`cdn_core.node.filling`, :mod:`cdn_core.optimize`,
:mod:`cdn_core.http_cache`, :mod:`cdn_core.store`.
"""
