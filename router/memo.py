"""The router's reply memo: packed UDP replies by query and client address.

The resolver already caches answers per (name, type, client prefix) and packed replies per
(query octets, prefix); this memo sits in front of both for UDP, keyed by the query's
octets after the 2-octet ID and the client's raw IP address, so that a repeat query costs
one dictionary lookup, an ID splice and a few counter increments: no text address, no
prefix computation, no :class:`~router.dnswire.Outcome`. An entry is used only while the
edge table's generation is the one it was made at and before its ``valid_until``
(monotonic seconds), exactly the resolver's own rule, so it can never give an answer the
resolver would not. A query whose name differs only in capitals (0x20 randomisation, which
many resolvers use) is found through the name in lower case and answered with its own
spelling of the question.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from cdn_core.metrics import FastCounter


class _Reply:
    __slots__ = ("tail", "generation", "valid_until", "counters")

    def __init__(
        self, tail: bytes, generation: int, valid_until: float, counters: tuple[FastCounter, ...]
    ) -> None:
        self.tail = tail
        self.generation = generation
        self.valid_until = valid_until
        self.counters = counters


def client_ip(addr: bytes) -> bytes:
    """The IP address octets of a raw ``sockaddr_in`` (16 octets) or ``sockaddr_in6``
    (28 octets), without the port."""
    return addr[4:8] if len(addr) == 16 else addr[8:24]


def ip_text(ip: bytes) -> str:
    """``client_ip`` octets as text (``192.0.2.1``, ``2001:db8::1``)."""
    return socket.inet_ntop(socket.AF_INET if len(ip) == 4 else socket.AF_INET6, ip)


def _name_end(data: bytes) -> int:
    """Offset of the root label ending the question's name (the first zero octet from
    offset 12), or -1. A zero octet inside a label would end it early; the folded key
    is then merely more specific, never shared by two different names."""
    return data.find(b"\x00", 12)


def _folded(data: bytes, end: int) -> bytes:
    """The query after its ID with the question name in lower case: the key under which
    differently cased spellings of one question meet (DNS names compare without case,
    RFC 4343; resolvers randomise case as a defence, the "0x20" bit). Length octets are
    below 64, so lower-casing touches letters only."""
    return data[2:12] + data[12:end].lower() + data[end:]


class ReplyMemo:
    """At most ``size`` replies; full, it starts over (the working set of a DNS server is
    small and refills in one TTL). A query is looked up by its octets first; a query
    spelled with other capitals (0x20 randomisation) is found through its folded form and
    gets the stored reply with its own spelling of the question."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._replies: dict[tuple[bytes, bytes], _Reply] = {}
        self._by_folded: dict[tuple[bytes, bytes], _Reply] = {}

    def __len__(self) -> int:
        return len(self._replies)

    def get(self, data: bytes, ip: bytes, generation: int, now: float) -> bytes | None:
        """The reply to ``data`` from ``ip``, with ``data``'s ID (and question spelling),
        counting it; or None."""
        reply = self._replies.get((data[2:], ip))
        end = -1
        if reply is None:
            end = _name_end(data)
            if end < 0:
                return None
            reply = self._by_folded.get((_folded(data, end), ip))
            if reply is None:
                return None
        if reply.generation != generation or now >= reply.valid_until:
            return None
        for counter in reply.counters:
            counter.value += 1
        if end < 0:
            return data[:2] + reply.tail
        # The reply's question is the query's (same offset and length): echo this
        # asker's capitals, as a 0x20 resolver checks (the tail starts at octet 2).
        tail = reply.tail
        return data[:2] + tail[:10] + data[12:end] + tail[end - 2 :]

    def put(
        self,
        data: bytes,
        ip: bytes,
        wire: bytes,
        generation: int,
        valid_until: float,
        counters: Sequence[FastCounter],
    ) -> None:
        """Remember ``wire`` as the reply to ``data`` from ``ip``; a later hit increments
        each of ``counters`` (the metrics one such query counts)."""
        if len(self._replies) >= self._size:
            self._replies.clear()
            self._by_folded.clear()
        reply = _Reply(wire[2:], generation, valid_until, tuple(counters))
        self._replies[(data[2:], ip)] = reply
        end = _name_end(data)
        if end >= 0 and wire[12 : end + 1] == data[12 : end + 1]:
            self._by_folded[(_folded(data, end), ip)] = reply
