"""The wire-neutral exchange every part of the request path shares: a parsed
:class:`~cdn_core.node.exchange.request.Request`, the
:class:`~cdn_core.node.exchange.channel.ResponseChannel` a response is written to, cache
keys, stored-response construction (RFC 9111 3 and 4.3.4; heads from
:mod:`cdn_core.heads`), and the request sanitising that defends against cache poisoning.

No protocol lives here: HTTP/1.1 (and later HTTP/2, HTTP/3) adapters in
:mod:`cdn_core.node.wire` turn bytes into a ``Request`` and implement ``ResponseChannel``.

May import: :mod:`cdn_core.node.settings` and the libraries beside the node
(:mod:`cdn_core.http_cache`, :mod:`cdn_core.heads`, :mod:`cdn_core.store`).
"""
