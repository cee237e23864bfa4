"""The pure resolver on the wire (router.resolver): zone semantics, EDNS0 and truncation,
malformed input.

No event loop, no sockets, no sleeps: queries are wire bytes built with dnspython, time is
a ManualClock, edge state is fed to the table directly (resolverworld.World). Each test
names the RFC section it checks where there is one.
"""

from __future__ import annotations

import random
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from resolverworld import EDGES, World


# -- zone semantics ---------------------------------------------------------------------
def test_service_name_is_answered_authoritatively_with_an_edge() -> None:
    w = World()
    r = w.ask()
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and r.flags & dns.flags.QR
    (rrset,) = r.answer
    assert rrset.ttl == 5
    assert [rr.address for rr in rrset][0] in {"192.0.2.1", "192.0.2.2", "192.0.2.3"}


def test_nxdomain_carries_soa_with_negative_ttl_rfc2308_3() -> None:
    r = World().ask("nope.example.test")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.flags & dns.flags.AA and not r.answer
    (soa,) = r.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.ttl == 30  # min(SOA TTL 3600, MINIMUM 30)


def test_nodata_for_missing_family_and_type_rfc2308_2_2() -> None:
    w = World()
    for name, rdtype in [
        ("www.example.test", "AAAA"),
        ("www.example.test", "MX"),
        ("example.test", "A"),
    ]:
        r = w.ask(name, rdtype)
        assert r.rcode() == dns.rcode.NOERROR, (name, rdtype)
        assert not r.answer
        assert r.authority[0].rdtype == dns.rdatatype.SOA


def test_empty_non_terminal_is_nodata_not_nxdomain_rfc8020() -> None:
    w = World(zones=[{"name": "example.test", "services": ["a.b.example.test"]}])
    assert w.ask("b.example.test").rcode() == dns.rcode.NOERROR
    assert w.ask("c.b.example.test").rcode() == dns.rcode.NXDOMAIN
    assert w.addresses(name="a.b.example.test")


@pytest.mark.parametrize("name", ["www.example.com", "badexample.test", "test", "."])
def test_names_outside_our_zones_are_refused(name: str) -> None:
    r = World().ask(name)
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.flags & dns.flags.AA
    assert not r.answer and not r.authority


def test_zone_transfer_and_other_classes_are_refused() -> None:
    w = World()
    assert w.ask("example.test", "AXFR").rcode() == dns.rcode.REFUSED
    q = dns.message.make_query("www.example.test", "A", rdclass="CH")
    r = dns.message.from_wire(w.raw(q.to_wire()).wire)
    assert r.rcode() == dns.rcode.REFUSED


def test_question_case_is_echoed_and_matching_is_case_insensitive() -> None:
    w = World()
    r = w.ask("WwW.ExAmPlE.TeSt")
    assert r.question[0].name.to_text() == "WwW.ExAmPlE.TeSt."
    assert r.answer
    # The cached answer is the zone's spelling, never an earlier client's (RFC 4343).
    for name in ("www.example.test", "WWW.EXAMPLE.TEST"):
        again = w.ask(name)
        assert again.question[0].name.to_text() == name + "."
        assert [rrset.name.to_text() for rrset in again.answer] == ["www.example.test."]


def test_cd_and_rd_bits_are_copied_rfc4035_3_1_6() -> None:
    w = World()
    q = dns.message.make_query("www.example.test", "A")
    q.flags |= dns.flags.CD
    q.flags &= ~dns.flags.RD
    out = w.raw(q.to_wire())
    assert out.wire is not None
    r = dns.message.from_wire(out.wire)
    assert r.flags & dns.flags.CD and not r.flags & dns.flags.RD


def test_apex_ns_and_soa_with_glue() -> None:
    w = World()
    r = w.ask("example.test", "NS")
    assert r.answer[0][0].target.to_text() == "ns1.example.test."
    assert r.additional[0][0].address == "127.0.0.1"
    assert w.ask("example.test", "SOA").answer[0].rdtype == dns.rdatatype.SOA
    assert w.addresses(name="ns1.example.test") == ["127.0.0.1"]


def test_any_on_service_name_returns_both_families() -> None:
    w = World(edges=[*EDGES[:1], {"name": "v6", "address": "2001:db8::1"}])
    r = w.ask(rdtype="ANY")
    assert {rrset.rdtype for rrset in r.answer} == {dns.rdatatype.A, dns.rdatatype.AAAA}


def test_ipv6_edges_answer_aaaa_rfc3596() -> None:
    w = World(edges=[{"name": "v6", "address": "2001:db8::1"}])
    assert w.addresses(rdtype="AAAA") == ["2001:db8::1"]
    assert w.ask(rdtype="A").answer == []


# -- EDNS0 and truncation ---------------------------------------------------------------
def test_opt_is_echoed_with_our_size_and_do_bit_rfc6891_rfc3225() -> None:
    w = World()
    q = dns.message.make_query("www.example.test", "A", use_edns=0, payload=4096, want_dnssec=True)
    r = dns.message.from_wire(w.raw(q.to_wire()).wire)
    assert r.edns == 0 and r.payload == 1232
    assert r.ednsflags & dns.flags.DO
    assert w.ask().edns == -1  # no OPT in, no OPT out


def test_unknown_edns_version_is_badvers_rfc6891_6_1_3() -> None:
    q = dns.message.make_query("www.example.test", "A", use_edns=1)
    r = dns.message.from_wire(World().raw(q.to_wire()).wire)
    assert r.rcode() == dns.rcode.BADVERS


def test_two_opt_records_are_formerr_rfc6891_6_1_1() -> None:
    q = dns.message.make_query("www.example.test", "A", use_edns=0)
    wire = bytearray(q.to_wire())
    opt = wire[-11:]  # the OPT RR dnspython appended (no options)
    wire += opt
    wire[11] = 2  # ARCOUNT
    out = World().raw(bytes(wire))
    assert dns.rcode.from_flags(int.from_bytes(out.wire[2:4], "big"), 0) == dns.rcode.FORMERR


def many_edges(n: int = 40) -> list[dict[str, Any]]:
    return [{"name": f"e{i}", "address": f"192.0.2.{i + 1}"} for i in range(n)]


def test_answer_that_does_not_fit_512_sets_tc_and_tcp_gets_it_all_rfc6891_7() -> None:
    w = World(edges=many_edges(), answers={"per_query": 40})
    r = w.ask()
    assert r.flags & dns.flags.TC and not r.answer
    big = w.ask(edns=0, payload=4096)
    assert not big.flags & dns.flags.TC and len(big.answer[0]) == 40
    small = w.ask(edns=0, payload=100)  # below 512 counts as 512 (6.2.5)
    assert small.flags & dns.flags.TC and small.edns == 0  # OPT kept when truncating
    tcp = w.ask(tcp=True)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 40


# -- malformed input --------------------------------------------------------------------
def test_short_packets_and_responses_are_dropped() -> None:
    w = World()
    assert w.raw(b"").wire is None
    assert w.raw(b"\x12\x34\x01").wire is None
    resp = bytearray(dns.message.make_query("www.example.test", "A").to_wire())
    resp[2] |= 0x80  # QR: a response, never answered (no loops between servers)
    assert w.raw(bytes(resp)).wire is None


def test_garbage_after_a_valid_header_is_formerr_with_the_same_id() -> None:
    out = World().raw(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff\xff")
    assert out.rcode == "FORMERR"
    assert out.wire[:2] == b"\xab\xcd"
    assert out.wire[2] & 0x80 and out.wire[3] & 0x0F == 1


def pointer_chain_query(links: int, extra_rrs: int = 1) -> bytes:
    """A query whose additional records' names follow ``links`` compression pointers,
    each pointing at the previous one (the chain hides in an unknown RR's RDATA)."""
    q = dns.message.make_query("www.example.test", "A").to_wire()
    start = len(q) + 1 + 10  # after the carrier RR's root name and fixed fields
    chain = b"".join(
        (0xC000 | (12 if i == 0 else start + 2 * (i - 1))).to_bytes(2, "big") for i in range(links)
    )
    carrier = b"\x00" + (65280).to_bytes(2, "big") + b"\x00\x01" + bytes(4)
    carrier += len(chain).to_bytes(2, "big") + chain
    last = (0xC000 | (start + 2 * (links - 1))).to_bytes(2, "big")
    rr = last + b"\x00\x01\x00\x01" + bytes(4) + b"\x00\x04" + bytes(4)
    body = q[12:] + carrier + rr * extra_rrs
    return q[:10] + (1 + extra_rrs).to_bytes(2, "big") + body


def test_compression_pointer_chains_are_cheap_and_harmless() -> None:
    w = World()
    assert w.raw(pointer_chain_query(3)).rcode == "NOERROR"  # a short chain is fine
    assert w.raw(pointer_chain_query(1900)).rcode == "FORMERR"  # too deep: no crash
    # Many names at the end of a long chain: refused before any parsing work.
    assert w.raw(pointer_chain_query(900, extra_rrs=50)).rcode == "FORMERR"
    assert w.ask().answer


def test_two_questions_and_unknown_opcode() -> None:
    w = World()
    q = dns.message.make_query("www.example.test", "A")
    q.question.append(q.question[0])
    assert w.raw(q.to_wire()).rcode == "FORMERR"
    notify = dns.message.make_query("example.test", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert w.raw(notify.to_wire()).rcode == "NOTIMP"


def test_random_bytes_never_raise() -> None:
    w = World()
    rng = random.Random(7)
    good = dns.message.make_query("www.example.test", "A", use_edns=0).to_wire()
    for _ in range(1500):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        w.raw(bytes(data[: rng.randint(0, len(data))]))
        w.raw(rng.randbytes(rng.randint(0, 64)))
    assert w.ask().answer  # still serving
