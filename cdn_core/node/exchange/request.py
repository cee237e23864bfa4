"""A parsed HTTP request as the node's handlers see it (made by
:class:`cdn_core.node.wire.http1.HttpServerProtocol`, and by the node itself for prewarms)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The protocol a request came over, by ``Request.version``, named by its ALPN token (RFC
# 7301; HTTP/1.0 counts as ``http/1.1``): the ``protocol`` label and the access log's
# ``proto``.
PROTOCOL_OF_VERSION = {"1.0": "http/1.1", "1.1": "http/1.1", "2": "h2", "3": "h3"}
PROTOCOLS = ("http/1.1", "h2", "h3")


class Request:
    """One parsed request. ``fields`` maps lower-case field names to combined values
    (RFC 9110 5.3); ``headers`` keeps the raw lines as ``(str, str)`` in order; ``target``
    is the request target as sent (origin-form ``/path?query``)."""

    __slots__ = (
        "method",
        "target",
        "headers",
        "fields",
        "version",
        "keep_alive",
        "body",
        "client",
        "scheme",
        "forwarded",
        "interim",
        "service",
        "service_path",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        fields: dict[str, str],
        version: str,
        keep_alive: bool,
        body: bytes,
        client: str,
        scheme: str = "http",
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.fields = fields
        self.version = version
        self.keep_alive = keep_alive
        self.body = body
        self.client = client
        self.scheme = scheme
        # True when a trusted forwarder's X-Forwarded-* / Forwarded fields were kept
        # (exchange.sanitize.ForwardedTrust); the scheme is then the client's.
        self.forwarded = False
        # Where 1xx responses from upstream go while this request waits for its final
        # response (ResponseChannel.interim, set by the request path), or None.
        self.interim: Callable[[int, list[tuple[str, str]]], None] | None = None
        # The service answering this request (a cdn_core.services CompiledService, set by
        # the proxy when the node runs services) and the normalised path its rules match.
        self.service: Any = None
        self.service_path = ""
