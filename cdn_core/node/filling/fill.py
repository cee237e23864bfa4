"""Responses on their way from upstream: a :class:`Fill` holds the body of one upstream
response as it arrives, so the request that started the fetch and every request collapsed
onto it stream the same bytes while the node stores them (DESIGN.md "Miss path")."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cdn_core.node.filling.upstream import UpstreamStream
from cdn_core.store import StoredResponse

# While a fill's store decision waits on its body (the reflection scan), its head is held
# back from clients until the decision or this many body bytes, so Cache-Status can say
# ``stored`` truthfully and collapsed requests are not handed a response built for
# another client. Past it the body streams and ``stored`` is left unsaid.
DECIDE_WITHIN_BYTES = 64 * 1024


class Fill:
    """The body of one upstream response, growing until :meth:`finish` or :meth:`fail`.

    ``meta`` is the response as known from its head (status, stored headers, freshness,
    validators; empty body). ``content_length`` is the upstream's (bytes) or ``None``.
    After a successful finish, ``entry`` is the complete response (stored or not).
    ``stored`` is whether it is (or will be) stored, ``None`` while that waits on the
    body (:data:`DECIDE_WITHIN_BYTES`); ``personal`` is set when the body turned out to
    reflect the request that fetched it (never shared with collapsed requests).
    """

    __slots__ = (
        "meta",
        "content_length",
        "chunks",
        "size",
        "done",
        "failed",
        "entry",
        "stored",
        "personal",
        "_event",
    )

    def __init__(self, meta: StoredResponse, content_length: int | None) -> None:
        self.meta = meta
        self.content_length = content_length
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self.failed = False
        self.entry: StoredResponse | None = None
        self.stored: bool | None = False
        self.personal = False
        self._event = asyncio.Event()

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def append(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        self._wake()

    def finish(self, entry: StoredResponse) -> None:
        self.entry = entry
        self.done = True
        self._wake()

    def fail(self) -> None:
        self.failed = True
        self.stored = False
        self.done = True
        self._wake()

    async def wait(self, seen_chunks: int) -> None:
        """Return once there are more than ``seen_chunks`` chunks or the fill is done."""
        while len(self.chunks) <= seen_chunks and not self.done:
            await self._event.wait()

    async def decided(self) -> None:
        """Return once :attr:`stored` is known, or the body passed
        :data:`DECIDE_WITHIN_BYTES` without it."""
        while self.stored is None and self.size < DECIDE_WITHIN_BYTES and not self.done:
            await self._event.wait()

    async def wait_done(self) -> None:
        while not self.done:
            await self._event.wait()


@dataclass(slots=True)
class FillResult:
    """What an upstream fetch produced, as soon as its head arrived.

    ``meta`` describes the response (for a complete one it *is* the response). At most one
    of ``fill`` (a body still streaming, shared) or ``stream`` (a body too large to keep,
    streamed straight through to one client) is set; with neither, ``meta`` is complete
    (stale, refreshed by a 304, an error answer). ``cache_status`` holds the Cache-Status
    parameters (RFC 9211); ``shareable`` says whether collapsed requests may use it.
    """

    cache_status: str
    shareable: bool
    meta: StoredResponse
    fill: Fill | None = None
    stream: UpstreamStream | None = None
    stale: bool = False

    async def complete(self) -> None:
        """Wait for the body to be received (or abandon a pass-through stream)."""
        if self.fill is not None:
            await self.fill.wait_done()
        if self.stream is not None:
            self.stream.close()
