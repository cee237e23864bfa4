"""The pure resolver and edge selection (router.resolver, router.select, router.table).

No event loop, no sockets, no sleeps: queries are wire bytes built with dnspython, time is
a ManualClock, edge state is fed to the table directly. Each test names the RFC section
it checks where there is one.
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

from cdn_core.clock import ManualClock
from router.app import static_edges
from router.config import RouterConfig
from router.ecs import encode_ecs
from router.resolver import Resolver
from router.table import EdgeTable

EDGES = [
    {"name": "edge1", "address": "192.0.2.1"},
    {"name": "edge2", "address": "192.0.2.2"},
    {"name": "edge3", "address": "192.0.2.3"},
]


class World:
    """A resolver, its table and a clock, with helpers to ask questions."""

    def __init__(self, edges: list[dict[str, Any]] = EDGES, **cfg: Any) -> None:
        self.config = RouterConfig.model_validate({"edges": edges, **cfg})
        self.clock = ManualClock()
        self.table = EdgeTable(
            self.config.health, self.config.load, self.config.latency, static_edges(self.config)
        )
        self.resolver = Resolver(self.config)

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def raw(self, wire: bytes, source: str = "198.51.100.7", tcp: bool = False):
        return self.resolver.handle(wire, source, tcp, self.table.snapshot(), self.now)

    def ask(
        self,
        name: str = "www.example.test",
        rdtype: str = "A",
        *,
        source: str = "198.51.100.7",
        tcp: bool = False,
        ecs: str | None = None,
        edns: int | None = None,
        payload: int = 1232,
    ) -> dns.message.Message:
        options = [dns.edns.GenericOption(8, encode_ecs(ecs))] if ecs else None
        if options and edns is None:
            edns = 0
        q = dns.message.make_query(
            name,
            rdtype,
            use_edns=edns if edns is not None else False,
            payload=payload,
            options=options,
        )
        out = self.raw(q.to_wire(), source, tcp)
        assert out.wire is not None
        return dns.message.from_wire(out.wire)

    def addresses(self, **kw: Any) -> list[str]:
        r = self.ask(**kw)
        return [rr.address for rrset in r.answer for rr in rrset]

    def probe(self, name: str, ok: bool = True, rtt_ms: float = 1.0) -> str | None:
        return self.table.record_probe(name, ok, rtt_ms if ok else None, self.now)

    def rtts(self, **rtt: float) -> None:
        for name, ms in rtt.items():
            self.probe(name, True, ms)


def ecs_scope(msg: dns.message.Message) -> int | None:
    for opt in msg.options:
        if opt.otype == 8:
            return opt.to_wire()[3]
    return None


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


# -- ECS, RFC 7871 ----------------------------------------------------------------------
def test_ecs_is_echoed_with_the_prefix_length_as_scope_rfc7871_7_2_1() -> None:
    w = World()
    r = w.ask(ecs="203.0.113.0/24")
    assert ecs_scope(r) == 24
    assert ecs_scope(w.ask(ecs="2001:db8:1::/48")) == 56
    assert ecs_scope(w.ask("nope.example.test", ecs="203.0.113.0/24")) == 0
    assert ecs_scope(w.ask(ecs="0.0.0.0/0")) == 0  # the client opted out


def test_one_usable_edge_answer_has_scope_zero() -> None:
    w = World(edges=EDGES[:1])
    assert ecs_scope(w.ask(ecs="203.0.113.0/24")) == 0


def test_malformed_ecs_is_formerr_rfc7871_6() -> None:
    w = World()
    bad = bytes.fromhex("00011800cb0071ff")  # 4 address octets for a /24
    q = dns.message.make_query(
        "www.example.test", "A", use_edns=0, options=[dns.edns.GenericOption(8, bad)]
    )
    assert w.raw(q.to_wire()).rcode == "FORMERR"
    good = bytes.fromhex("00011800cb0071")
    q = dns.message.make_query(
        "www.example.test", "A", use_edns=0, options=[dns.edns.GenericOption(8, good)]
    )
    assert w.raw(q.to_wire()).rcode == "NOERROR"
    scoped = bytes.fromhex("00011810cb0071")  # non-zero scope in a query
    q = dns.message.make_query(
        "www.example.test", "A", use_edns=0, options=[dns.edns.GenericOption(8, scoped)]
    )
    assert w.raw(q.to_wire()).rcode == "FORMERR"
    host_bits = bytes.fromhex("00011700cb0071")  # /23 with bit 24 set
    q = dns.message.make_query(
        "www.example.test", "A", use_edns=0, options=[dns.edns.GenericOption(8, host_bits)]
    )
    assert w.raw(q.to_wire()).rcode == "FORMERR"


def test_client_prefix_rtt_beats_probe_rtt_and_ecs_picks_the_prefix() -> None:
    w = World()
    w.rtts(edge1=1.0, edge2=20.0, edge3=30.0)
    assert w.addresses(source="203.0.113.9") == ["192.0.2.1"]  # lowest probe RTT
    edge2_near = w.table.prefixes.parse_prefix("203.0.113.0/24")
    assert w.table.record_client_rtt("edge2", edge2_near, 0.5, w.now)
    assert w.addresses(source="203.0.113.9") == ["192.0.2.2"]
    assert w.addresses(source="198.51.100.1", ecs="203.0.113.0/24") == ["192.0.2.2"]
    assert w.addresses(source="203.0.113.9", ecs="198.51.100.0/24") == ["192.0.2.1"]


def test_client_samples_age_out() -> None:
    w = World(latency={"sample_max_age": 10.0})
    w.rtts(edge1=1.0, edge2=20.0, edge3=30.0)
    w.table.record_client_rtt("edge3", w.table.prefixes.parse_prefix("203.0.113.0/24"), 0.1, w.now)
    assert w.addresses(ecs="203.0.113.0/24") == ["192.0.2.3"]
    w.clock.advance(11)
    assert w.addresses(ecs="203.0.113.0/24") == ["192.0.2.1"]  # cached entry expired too
    assert w.table.expire(w.now) == 1 and w.table.client_prefix_count() == 0


def test_equally_fast_edges_spread_over_prefixes_but_stick_per_prefix() -> None:
    w = World()
    w.rtts(edge1=1.0, edge2=1.5, edge3=50.0)  # edge1 and edge2 within 2 ms
    seen = {w.addresses(source=f"10.0.{i}.1")[0] for i in range(64)}
    assert seen == {"192.0.2.1", "192.0.2.2"}
    assert len({w.addresses(source="10.0.7.1")[0] for _ in range(5)}) == 1


# -- health -----------------------------------------------------------------------------
def test_edges_are_up_until_probed_and_go_down_after_fall() -> None:
    w = World(edges=EDGES[:2])
    w.rtts(edge1=1.0, edge2=5.0)
    assert w.addresses() == ["192.0.2.1"]
    assert w.probe("edge1", ok=False) is None  # one failure: suspect, not down
    assert w.addresses() == ["192.0.2.2"]  # ...but no longer preferred
    assert w.probe("edge1", ok=False) == "down"
    assert w.addresses() == ["192.0.2.2"]
    assert w.probe("edge1") is None  # rise 2
    assert w.probe("edge1") == "up"
    assert w.addresses() == ["192.0.2.1"]


def test_ttl_is_lowered_while_any_edge_is_degraded() -> None:
    w = World()
    assert w.ask().answer[0].ttl == 5
    w.probe("edge3", ok=False)
    assert w.ask().answer[0].ttl == 1
    w.probe("edge3", ok=False)
    assert w.ask().answer[0].ttl == 1
    w.probe("edge3")
    w.probe("edge3")
    assert w.ask().answer[0].ttl == 5


def test_all_down_answers_least_bad_or_fallback_never_empty() -> None:
    w = World(edges=EDGES[:2])
    for _ in range(2):
        w.probe("edge1", ok=False)
    for _ in range(5):
        w.probe("edge2", ok=False)
    assert w.addresses() == ["192.0.2.1"]  # the shorter failure streak
    out = w.raw(dns.message.make_query("www.example.test", "A").to_wire())
    assert out.reasons == ("down",)
    f = World(edges=EDGES[:2], answers={"fallback": ["198.51.100.99", "2001:db8::99"]})
    for name in ("edge1", "edge2"):
        f.probe(name, ok=False)
        f.probe(name, ok=False)
    assert f.addresses() == ["198.51.100.99"]
    assert f.addresses(rdtype="AAAA") == ["2001:db8::99"]


# -- load ---------------------------------------------------------------------------------
def test_overload_hysteresis_on_in_flight() -> None:
    w = World(edges=EDGES[:2], load={"high_in_flight": 100, "low_in_flight": 50})
    w.rtts(edge1=1.0, edge2=10.0)
    t = w.table
    t.record_load("edge1", 99, None, w.now)
    assert w.addresses() == ["192.0.2.1"]
    t.record_load("edge1", 100, None, w.now)
    assert w.addresses() == ["192.0.2.2"]
    t.record_load("edge1", 60, None, w.now)  # between the marks: still overloaded
    assert w.addresses() == ["192.0.2.2"]
    t.record_load("edge1", 50, None, w.now)
    assert w.addresses() == ["192.0.2.1"]


def test_cpu_use_comes_from_the_cpu_seconds_delta() -> None:
    w = World(edges=EDGES[:2])
    w.rtts(edge1=1.0, edge2=10.0)
    w.table.record_load("edge1", 0, 100.0, w.now)
    w.clock.advance(2.0)
    w.table.record_load("edge1", 0, 101.9, w.now)  # 0.95 of a core
    assert w.addresses() == ["192.0.2.2"]
    w.clock.advance(1.0)
    w.table.record_load("edge1", 0, 102.7, w.now)  # 0.8: above low_cpu 0.7, still out
    assert w.addresses() == ["192.0.2.2"]
    w.clock.advance(1.0)
    w.table.record_load("edge1", 0, 103.0, w.now)
    assert w.addresses() == ["192.0.2.1"]


def test_all_overloaded_answers_the_least_loaded() -> None:
    w = World(edges=EDGES[:2], load={"high_in_flight": 10, "low_in_flight": 5})
    w.table.record_load("edge1", 30, None, w.now)
    w.table.record_load("edge2", 12, None, w.now)
    out = w.raw(dns.message.make_query("www.example.test", "A").to_wire())
    assert out.edges == ("edge2",) and out.reasons == ("overloaded",)


# -- answer cache -------------------------------------------------------------------------
def test_answer_cache_hits_until_the_table_changes() -> None:
    w = World(edges=EDGES[:2])
    w.rtts(edge1=1.0, edge2=10.0)
    q = dns.message.make_query("www.example.test", "A").to_wire()
    assert not w.raw(q).cache_hit
    assert w.raw(q).cache_hit
    assert not w.raw(q, source="10.9.9.9").cache_hit  # another prefix, another entry
    gen = w.table.generation
    w.probe("edge1", ok=False)
    assert w.table.generation > gen
    out = w.raw(q)
    assert not out.cache_hit and out.edges == ("edge2",)


def test_small_probe_rtt_jitter_keeps_the_cache() -> None:
    w = World(edges=EDGES[:1])
    w.probe("edge1", rtt_ms=10.0)
    gen = w.table.generation
    w.probe("edge1", rtt_ms=10.5)  # EWMA moves 0.15 ms: below the 10% threshold
    assert w.table.generation == gen
    w.probe("edge1", rtt_ms=30.0)
    assert w.table.generation > gen


def test_removed_edges_leave_answers() -> None:
    w = World()
    specs = w.table.specs()
    w.table.set_edges([s for s in specs if s.name == "edge3"])
    assert w.addresses() == ["192.0.2.3"]


def test_reused_replies_carry_each_querys_id() -> None:
    w = World()
    first = dns.message.make_query("www.example.test", "A", id=1).to_wire()
    second = dns.message.make_query("www.example.test", "A", id=2).to_wire()
    a, b = w.raw(first), w.raw(second)
    assert not a.cache_hit and b.cache_hit
    assert dns.message.from_wire(b.wire).id == 2
    assert a.wire[2:] == b.wire[2:]
    # Another spelling of the name still shares the per-name answer cache.
    assert w.raw(dns.message.make_query("WWW.example.test", "A").to_wire()).cache_hit


def test_all_down_prefers_an_edge_that_still_answers_http() -> None:
    w = World(edges=EDGES[:2])
    for _ in range(5):
        w.table.record_probe("edge1", False, None, w.now, "HTTP 503", reachable=True)
    for _ in range(2):
        w.table.record_probe("edge2", False, None, w.now, "refused")
    assert w.addresses() == ["192.0.2.1"]  # alive but unhealthy beats gone
