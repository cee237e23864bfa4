"""Hostile DNS queries against the router (issue 7): over-long labels and names are
FORMERR (RFC 1035 2.3.4), never SERVFAIL, and the router keeps answering."""

from __future__ import annotations

import struct

from router.config import RouterConfig
from router.dnswire import FORMERR
from router.resolver import Resolver
from router.table import EdgeTable


def query(qname: bytes) -> bytes:
    return struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)


def wire(*labels: bytes) -> bytes:
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"


def rcode(answer: bytes) -> int:
    return answer[3] & 0x0F


def test_rfc1035_2_3_4_long_labels_and_names_are_formerr():
    cfg = RouterConfig()
    resolver = Resolver(cfg)
    table = EdgeTable(cfg.health, cfg.load, cfg.latency, [])
    long_label = query(wire(b"a" * 64, b"example", b"test"))
    long_name = query(wire(*(bytes([97 + i]) * 63 for i in range(4)), b"example", b"test"))
    for q in (long_label, long_name):
        out = resolver.handle(q, "127.0.0.1", False, table.snapshot(), 0.0)
        assert out.wire is not None and rcode(out.wire) == FORMERR
