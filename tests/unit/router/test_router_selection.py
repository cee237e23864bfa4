"""Edge selection through the resolver (router.resolver, router.select, router.table):
EDNS Client Subnet, latency, health, load and the answer cache.

Same bench as test_router_resolver.py (resolverworld.World): no event loop, no sockets,
time is a ManualClock.
"""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from resolverworld import EDGES, World, ecs_scope


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
    assert w.addresses() == ["192.0.2.2"]  # up, but in its slow start
    w.clock.advance(w.config.health.slow_start)
    w.probe("edge1")
    assert w.addresses() == ["192.0.2.1"]


def test_a_recovered_edge_ranks_after_steady_ones_for_its_slow_start() -> None:
    w = World(edges=EDGES[:2], health={"slow_start": 10.0})
    w.rtts(edge1=1.0, edge2=5.0)
    w.probe("edge1", ok=False)  # one failure: suspect
    w.probe("edge1")  # answering again: recovering
    assert w.addresses() == ["192.0.2.2"]
    w.clock.advance(9.0)
    w.probe("edge1")
    assert w.addresses() == ["192.0.2.2"]
    w.clock.advance(1.0)
    w.probe("edge1")
    assert w.addresses() == ["192.0.2.1"]
    # Alone, a recovering edge is still answered: ranking, not exclusion.
    w = World(edges=EDGES[:1])
    w.probe("edge1", ok=False)
    w.probe("edge1")
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


def test_health_not_yet_checked_is_answered_with_the_degraded_ttl() -> None:
    w = World(first_round=True)
    assert w.ask().answer[0].ttl == 1  # nothing probed yet
    w.probe("edge1")
    w.probe("edge2")
    assert w.ask().answer[0].ttl == 1  # edge3 not yet
    w.probe("edge3")
    assert w.ask().answer[0].ttl == 5  # the first round is complete
    w = World(first_round=True)
    w.table.end_first_round()  # the prober's time bound passed
    assert w.ask().answer[0].ttl == 5


def test_edges_seen_healthy_are_preferred_over_unprobed_ones() -> None:
    w = World(first_round=True)
    w.probe("edge3", rtt_ms=40.0)  # slow but known good; edge1 and edge2 unknown
    assert w.addresses() == ["192.0.2.3"]
    w.probe("edge1", ok=False)  # suspect: still after the good one
    assert w.addresses() == ["192.0.2.3"]
    w.probe("edge2", rtt_ms=1.0)
    assert w.addresses() == ["192.0.2.2"]


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
