"""MemoryStore with each policy: exact byte accounting (head + body + measured overhead),
per-object limit, Vary variants, replacement, purge through the indexes, counters."""

import random

import pytest

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.decision import Freshness
from cdn_core.store import MemoryStore, PurgeSelector, StoredResponse
from cdn_core.store.entry import (
    ENTRY_OVERHEAD_BYTES,
    HEADER_OVERHEAD_BYTES,
    KEY_INCLUDED,
    TAG_OVERHEAD_BYTES,
)
from cdn_core.store.policy import POLICIES

HEAD = b"HTTP/1.1 200 OK\r\n"


def entry(key, body=b"x" * 100, tags=(), vary=(), vkey=(), headers=()):
    return StoredResponse(
        key=key,
        host=key.split("/")[2],
        status=200,
        reason="OK",
        headers=list(headers),
        fields={n.lower(): v for n, v in headers},
        body=body,
        cc=parse_cache_control("max-age=60"),
        freshness=Freshness(60, 0, 0),
        vary_names=vary,
        vary_key=vkey,
        surrogate_keys=frozenset(tags),
        head=HEAD,
    )


def test_charged_size_is_head_body_and_measured_overhead():
    e = entry(
        "http://h/" + "p" * 100,
        headers=[("Content-Type", "text/plain"), ("ETag", '"v1"')],
        tags=("t1",),
    )
    expected = (
        len(HEAD)
        + 100
        + ENTRY_OVERHEAD_BYTES
        + (len(e.key) - KEY_INCLUDED)
        + 2 * HEADER_OVERHEAD_BYTES
        + 2 * len("Content-Type")
        + len("text/plain")
        + 2 * len("ETag")
        + len('"v1"')
        + TAG_OVERHEAD_BYTES
        + 2
    )
    assert e.compute_size() == expected


@pytest.mark.parametrize("policy", POLICIES)
def test_bytes_are_exactly_the_sum_of_resident_entries(policy):
    s = MemoryStore(max_bytes=40_000, max_object_bytes=10_000, policy=policy)
    for i in range(200):
        s.put(entry(f"http://h/{i % 70}", body=b"x" * (50 + 37 * (i % 11))))
        for k in (3, 5, 8):
            s.lookup(f"http://h/{k}", {})
    resident = [v for vs in s._variants.values() for v in vs]
    assert s.bytes == sum(v.size for v in resident) <= s.max_bytes
    st = s.stats()
    assert st["entries"] == len(resident) and st["policy"] == policy
    assert st["evictions"] + st["rejected_by_reason"]["filter"] > 0
    assert st["lookup_hits"] + st["lookup_misses"] == 600


@pytest.mark.parametrize("policy", POLICIES)
def test_the_index_holds_exactly_what_the_policy_holds_for_any_object_size(policy):
    # Sizes from a few bytes to nearly the whole budget, replacements included: whatever
    # the policy refuses or evicts must leave the store's index too (else a lookup would
    # return, or a hit update, an entry the policy no longer holds).
    rng = random.Random(3)
    s = MemoryStore(max_bytes=2_000_000, max_object_bytes=2_000_000, policy=policy)
    bodies = {n: b"x" * n for n in (10, 100, 1_000, 50_000, 500_000, 1_700_000)}
    for _ in range(3000):
        key = f"http://h/{rng.randrange(600)}"
        s.put(entry(key, body=bodies[rng.choice((10, 100, 1_000, 1_000, 50_000, 500_000,
                                                  1_700_000))]))
        s.lookup(f"http://h/{rng.randrange(600)}", {})
        resident = [v for vs in s._variants.values() for v in vs]
        assert all(v in s._policy for v in resident)
        assert s.bytes == sum(v.size for v in resident) <= s.max_bytes


@pytest.mark.parametrize("policy", POLICIES)
def test_per_object_limit_and_replacement(policy):
    s = MemoryStore(max_bytes=10**6, max_object_bytes=2000, policy=policy)
    assert not s.put(entry("http://h/big", body=b"x" * 2000))
    assert s.stats()["rejected_by_reason"]["too_large"] == 1
    first = entry("http://h/a")
    assert s.put(first)
    second = entry("http://h/a", body=b"y" * 300)
    assert s.put(second)
    assert s.lookup("http://h/a", {}) is second
    assert s.bytes == second.size and s.stats()["entries"] == 1


@pytest.mark.parametrize("policy", POLICIES)
def test_purge_touches_only_matching_entries(policy):
    s = MemoryStore(max_bytes=10**6, max_object_bytes=10**5, policy=policy)
    s.put(entry("http://a/x/1", tags=("t1",)))
    s.put(entry("http://a/x/2"))
    s.put(entry("http://a/y"))
    s.put(entry("http://b/x/1", tags=("t1",)))
    assert s.purge(PurgeSelector("tag", "t1"), 0) == 2
    assert s.purge(PurgeSelector("prefix", "http://a/x/"), 0) == 1
    assert s.lookup("http://a/y", {}) is not None
    assert s.purge(PurgeSelector("host", "a"), 0) == 1
    assert s.stats()["entries"] == 0 and s.bytes == 0
    assert s._by_host == {} and s._by_tag == {}


@pytest.mark.parametrize("policy", POLICIES)
def test_vary_variants_share_the_key_and_are_bounded(policy):
    s = MemoryStore(max_bytes=10**6, max_object_bytes=10**5, max_variants=2, policy=policy)
    names = ("accept-encoding",)
    for enc in ("br", "gzip", "identity"):
        s.put(entry("http://h/v", vary=names, vkey=(("accept-encoding", enc),)))
    assert len(s.variants("http://h/v")) == 2
    assert s.stats()["evictions_by_reason"]["variants"] == 1
    assert s.lookup("http://h/v", {"accept-encoding": "br"}) is None
    assert s.lookup("http://h/v", {"accept-encoding": "gzip"}) is not None
    # New Vary names replace every stored variant (RFC 9111 4.1).
    s.put(entry("http://h/v", vary=("accept-language",), vkey=(("accept-language", "en"),)))
    assert len(s.variants("http://h/v")) == 1
    assert s.bytes == sum(v.size for v in s.variants("http://h/v"))


def test_wtinylfu_store_keeps_popular_urls_through_a_scan():
    e0 = entry("http://h/0")
    s = MemoryStore(max_bytes=e0.compute_size() * 50, max_object_bytes=10**5, policy="wtinylfu")
    popular = [f"http://h/p{i}" for i in range(40)]
    for _ in range(4):
        for key in popular:
            if s.lookup(key, {}) is None:
                s.put(entry(key))
    for i in range(2000):
        key = f"http://h/scan{i}"
        if s.lookup(key, {}) is None:
            s.put(entry(key))
    assert sum(s.lookup(k, {}) is not None for k in popular) >= 38
    assert s.stats()["rejected_by_reason"]["filter"] > 1900
