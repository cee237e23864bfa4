"""The UDP reply memo (router.memo): keyed by query octets after the ID and client IP,
valid for one table generation and until valid_until, counting each hit."""

from __future__ import annotations

import socket
import struct

from cdn_core.metrics import FastCounter
from router.memo import ReplyMemo, client_ip, ip_text

QUERY = b"\x12\x34" + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01"
REPLY = b"\x12\x34" + b"\x85\x00reply-octets"
IP = bytes([192, 0, 2, 7])


def test_hit_splices_the_id_and_counts() -> None:
    memo = ReplyMemo(8)
    counters = [FastCounter(), FastCounter()]
    memo.put(QUERY, IP, REPLY, generation=3, valid_until=10.0, counters=counters)
    again = b"\xab\xcd" + QUERY[2:]
    assert memo.get(again, IP, 3, 9.9) == b"\xab\xcd" + REPLY[2:]
    assert [c.value for c in counters] == [1, 1]


def test_other_client_generation_or_expiry_miss() -> None:
    memo = ReplyMemo(8)
    counter = FastCounter()
    memo.put(QUERY, IP, REPLY, generation=3, valid_until=10.0, counters=[counter])
    assert memo.get(QUERY, bytes([192, 0, 2, 8]), 3, 0.0) is None  # another client
    assert memo.get(QUERY, IP, 4, 0.0) is None  # the edge table moved
    assert memo.get(QUERY, IP, 3, 10.0) is None  # past valid_until
    assert counter.value == 0


def test_full_memo_starts_over() -> None:
    memo = ReplyMemo(2)
    for i in range(3):
        memo.put(QUERY, bytes([10, 0, 0, i]), REPLY, 1, 10.0, [])
    assert len(memo) == 1


def test_raw_socket_addresses() -> None:
    v4 = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 5353) + IP + b"\0" * 8
    assert client_ip(v4) == IP and ip_text(client_ip(v4)) == "192.0.2.7"
    six = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    v6 = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 5353, 0) + six + b"\0" * 4
    assert len(v6) == 28 and ip_text(client_ip(v6)) == "2001:db8::1"
