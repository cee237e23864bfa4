"""Rendezvous hashing, cache keys and the byte-bounded memory store."""

import pytest

from cdn_core.hashing import rendezvous_order
from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.decision import Freshness
from cdn_core.node.exchange.keys import cache_key, key_from_url
from cdn_core.store import MemoryStore, PurgeSelector, StoredResponse
from cdn_core.store.entry import ENTRY_OVERHEAD_BYTES


def test_rendezvous_moves_only_the_removed_nodes_keys():
    nodes = ["a", "b", "c"]
    keys = [f"k{i}" for i in range(300)]
    before = {k: rendezvous_order(k, nodes)[0] for k in keys}
    after = {k: rendezvous_order(k, ["a", "c"])[0] for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == "b" for k in moved)
    assert 60 < sum(1 for v in before.values() if v == "b") < 140  # roughly a third each


def test_cache_key_drops_port_and_lowercases_host():
    assert cache_key("http", "WWW.Example.test:8080", "/a?b=1") == "http://www.example.test/a?b=1"
    assert key_from_url("http://www.example.test/index.html") == (
        "http://www.example.test/index.html"
    )
    with pytest.raises(ValueError):
        key_from_url("/relative")


def entry(key, body=b"x" * 100, tags=(), vary=(), vkey=()):
    host = key.split("/")[2]
    e = StoredResponse(
        key=key,
        host=host,
        status=200,
        reason="OK",
        headers=[],
        fields={},
        body=body,
        cc=parse_cache_control("max-age=60"),
        freshness=Freshness(60, 0, 0),
        vary_names=vary,
        vary_key=vkey,
        surrogate_keys=frozenset(tags),
        head=b"HTTP/1.1 200 OK\r\n",
    )
    return e


def test_store_is_byte_bounded_with_lru_eviction():
    size = 100 + len(b"HTTP/1.1 200 OK\r\n") + ENTRY_OVERHEAD_BYTES
    s = MemoryStore(max_bytes=size * 3, max_object_bytes=10_000)
    for i in range(3):
        assert s.put(entry(f"http://h/{i}"))
    s.lookup("http://h/0", {})  # touch 0: 1 is now least recently used
    s.put(entry("http://h/3"))
    assert s.lookup("http://h/1", {}) is None and s.lookup("http://h/0", {}) is not None
    assert s.bytes <= s.max_bytes and s.stats()["evictions"] == 1


def test_store_rejects_objects_over_the_per_object_limit():
    s = MemoryStore(max_bytes=10**6, max_object_bytes=500)
    assert not s.put(entry("http://h/big", body=b"x" * 1000))
    assert s.stats()["rejected"] == 1


def test_purge_by_url_prefix_host_tag_and_soft():
    s = MemoryStore(max_bytes=10**6, max_object_bytes=10**5)
    s.put(entry("http://a/x/1", tags=("t1",)))
    s.put(entry("http://a/x/2"))
    s.put(entry("http://a/y"))
    s.put(entry("http://b/x/1", tags=("t1",)))
    assert s.purge(PurgeSelector("tag", "t1"), 0) == 2
    assert s.purge(PurgeSelector("prefix", "http://a/x/"), 0) == 1
    assert s.purge(PurgeSelector("url", "http://a/y", soft=True), 10) == 1
    stale = s.lookup("http://a/y", {})
    assert stale is not None and stale.freshness.freshness_lifetime <= 10
    assert s.purge(PurgeSelector("host", "a"), 0) == 1 and s.stats()["entries"] == 0


def test_vary_variants_are_separate_and_bounded():
    s = MemoryStore(max_bytes=10**6, max_object_bytes=10**5, max_variants=2)
    names = ("accept-encoding",)
    for enc in ("br", "gzip", "identity"):
        s.put(entry("http://h/v", vary=names, vkey=(("accept-encoding", enc),)))
    assert len(s.variants("http://h/v")) == 2
    assert s.lookup("http://h/v", {"accept-encoding": "gzip"}) is not None
