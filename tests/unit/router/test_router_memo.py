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


def _query(name: str, qtype: str = "A", qid: int = 7) -> bytes:
    from dnslib import DNSRecord

    q = DNSRecord.question(name, qtype)
    q.header.id = qid
    return bytes(q.pack())


def _reply(query: bytes) -> bytes:
    from dnslib import RR, A, DNSRecord

    r = DNSRecord.parse(query).reply()
    r.add_answer(RR("www.example.test", rdata=A("127.0.1.2"), ttl=5))
    return bytes(r.pack())


def test_other_capitals_0x20_hit_and_echo_their_own_spelling() -> None:
    from dnslib import DNSRecord

    memo = ReplyMemo(8)
    counter = FastCounter()
    first = _query("www.example.test")
    memo.put(first, IP, _reply(first), generation=1, valid_until=10.0, counters=[counter])
    mixed = _query("wWw.ExAmPle.TEST", qid=99)
    got = memo.get(mixed, IP, 1, 5.0)
    assert got is not None and counter.value == 1
    parsed = DNSRecord.parse(got)
    assert parsed.header.id == 99 and str(parsed.q.qname) == "wWw.ExAmPle.TEST."
    assert [str(rr.rdata) for rr in parsed.rr] == ["127.0.1.2"]
    # Still keyed by everything else: another type, client or generation misses.
    assert memo.get(_query("WWW.example.test", "AAAA"), IP, 1, 5.0) is None
    assert memo.get(mixed, bytes([192, 0, 2, 8]), 1, 5.0) is None
    assert memo.get(mixed, IP, 2, 5.0) is None


def test_no_folded_entry_when_the_reply_does_not_echo_the_question() -> None:
    memo = ReplyMemo(8)
    first = _query("www.example.test")
    other = _reply(_query("abc.example.test"))  # a reply whose question differs
    memo.put(first, IP, other, generation=1, valid_until=10.0, counters=[])
    assert memo.get(first, IP, 1, 5.0) is not None  # the exact query still hits
    assert memo.get(_query("WWW.example.test"), IP, 1, 5.0) is None
