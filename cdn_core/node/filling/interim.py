"""Interim (1xx) responses from upstream, passed on to the client waiting for the final
one (RFC 9110 15.2): 103 Early Hints (RFC 8297) and any other 1xx a proxy must forward.

aiohttp reads and drops every 1xx before the final response; :class:`InterimResponse`
(the pool's ``response_class``) reports each one to the sink of the request being
fetched, set with :func:`reporting` around the request (a context variable, since
aiohttp builds the response object itself). Not reported: 100 Continue (the node asked
for it, having answered the client's ``Expect`` itself, RFC 9110 10.1.1) and 101 (the
node never forwards ``Upgrade``). Interim responses are never stored, and their fields
never enter the final response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aiohttp

from cdn_core.heads import HOP_BY_HOP

InterimSink = Callable[[int, list[tuple[str, str]]], None]
"""Called with the status (102..199) and the interim response's end-to-end fields."""

_sink: ContextVar[InterimSink | None] = ContextVar("interim_sink", default=None)


@contextmanager
def reporting(sink: InterimSink | None) -> Iterator[None]:
    """Report the 1xx responses of upstream requests made inside the block to ``sink``."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def forwarded_fields(raw: Any) -> list[tuple[str, str]]:
    """An interim response's fields as ``(str, str)``, hop-by-hop ones and those its
    ``Connection`` names left out (RFC 9110 7.6.1)."""
    fields = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
    named = {
        t.strip().lower() for n, v in fields if n.lower() == "connection" for t in v.split(",")
    }
    drop = HOP_BY_HOP | named | {"content-length"}
    return [(n, v) for n, v in fields if n.lower() not in drop]


class InterimResponse(aiohttp.ClientResponse):
    """An aiohttp response that reports the 1xx read before it (module docstring)."""

    async def start(self, connection: Any) -> aiohttp.ClientResponse:
        sink = _sink.get()
        protocol = connection.protocol
        if sink is None or protocol is None:
            return await super().start(connection)
        read = protocol.read

        async def read_reporting() -> Any:
            message, payload = await read()
            if 100 < message.code < 200 and message.code != 101:
                sink(message.code, forwarded_fields(message.raw_headers))
            return message, payload

        # aiohttp's start() loops over protocol.read() until a final status; wrapping
        # the read for this one response sees each interim message and changes nothing.
        protocol.read = read_reporting
        try:
            return await super().start(connection)
        finally:
            del protocol.read
