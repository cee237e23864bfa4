"""The on-disk tier: restart survival (fresh entries served without an origin fetch),
torn and corrupt files dropped and never served, byte budget, purges that stick."""

import queue
import time

from cdn_core.http_cache.cache_control import parse_cache_control
from cdn_core.http_cache.decision import Freshness
from cdn_core.store import DiskTier, MemoryStore, PurgeSelector, StoredResponse
from cdn_core.store.diskformat import SUFFIX, file_name

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"


def entry(key, body=b"x" * 100, tags=(), lifetime=3600.0, response_time=None):
    headers = [("Cache-Control", f"max-age={int(lifetime)}"), ("ETag", '"v1"')]
    return StoredResponse(
        key=key,
        host=key.split("/")[2],
        status=200,
        reason="OK",
        headers=headers,
        fields={n.lower(): v for n, v in headers},
        body=body,
        cc=parse_cache_control(f"max-age={int(lifetime)}"),
        freshness=Freshness(lifetime, 0, time.time() if response_time is None else response_time),
        surrogate_keys=frozenset(tags),
        head=HEAD,
        etag='"v1"',
    )


def store(path, **kw):
    disk = DiskTier(path, kw.pop("disk_bytes", 10**6), fsync=False)
    return MemoryStore(max_bytes=10**6, max_object_bytes=10**5, policy="wtinylfu", disk=disk, **kw)


def path_of(tmp_path, key):
    name = file_name(key, ())
    return tmp_path / name[:2] / (name + SUFFIX)


def test_fresh_entries_survive_a_restart_and_are_served_from_disk(tmp_path):
    s = store(tmp_path)
    s.start()  # writes go through the writer thread
    s.put(entry("http://h/a", body=b"A" * 100, tags=("t",)))
    s.close()
    again = store(tmp_path)
    got = again.lookup("http://h/a", {})
    assert got is not None and got.body == b"A" * 100 and got.head == HEAD
    assert got.etag == '"v1"' and got.cc.max_age == 3600 and got.surrogate_keys == {"t"}
    assert got.freshness.age(time.time()) < got.freshness.freshness_lifetime  # fresh
    st = again.stats()
    assert st["disk"]["hits"] == 1 and st["disk"]["loaded"] == 1
    assert again.lookup("http://h/a", {}) is got  # promoted into memory


def test_a_corrupt_body_is_detected_on_read_dropped_and_never_served(tmp_path):
    s = store(tmp_path)
    s.put(entry("http://h/a"))
    path = path_of(tmp_path, "http://h/a")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip a body bit; lengths still match
    path.write_bytes(bytes(data))
    again = store(tmp_path)
    assert again.lookup("http://h/a", {}) is None
    assert not path.exists() and again.stats()["disk"]["corrupt"] == 1


def test_torn_files_and_leftover_temporaries_are_dropped_at_start(tmp_path):
    s = store(tmp_path)
    s.put(entry("http://h/a"))
    s.put(entry("http://h/b"))
    torn = path_of(tmp_path, "http://h/a")
    torn.write_bytes(torn.read_bytes()[:-10])  # a write cut short
    meta_bad = path_of(tmp_path, "http://h/b")
    data = bytearray(meta_bad.read_bytes())
    data[30] ^= 0x01  # inside the metadata
    meta_bad.write_bytes(bytes(data))
    (torn.parent / "deadbeef.7.tmp").write_bytes(b"partial")
    again = store(tmp_path)
    assert again.stats()["disk"]["corrupt"] == 2 and again.stats()["disk"]["entries"] == 0
    assert again.lookup("http://h/a", {}) is None and again.lookup("http://h/b", {}) is None
    assert list(tmp_path.rglob("*.tmp")) == [] and list(tmp_path.rglob("*" + SUFFIX)) == []


def test_disk_budget_evicts_least_recently_used_files(tmp_path):
    one = DiskTier(tmp_path / "probe", 10**6, fsync=False)
    one.put(entry("http://h/probe"))
    size = one.stats()["bytes"]
    s = store(tmp_path / "c", disk_bytes=size * 3 + 10)
    for k in "abc":
        s.put(entry(f"http://h/{k}"))
    s.disk.get("http://h/a", {})  # touch a: b is now least recently used
    s.put(entry("http://h/d"))
    st = s.stats()["disk"]
    assert st["entries"] == 3 and st["evictions"] == 1 and st["bytes"] <= size * 3 + 10
    assert not path_of(tmp_path / "c", "http://h/b").exists()


def test_hard_purges_reach_the_disk_and_stay_purged_after_restart(tmp_path):
    s = store(tmp_path)
    s.start()
    s.put(entry("http://h/a", tags=("t1",)))
    s.put(entry("http://h/b", tags=("t1",)))
    s.put(entry("http://h/c"))
    assert s.purge(PurgeSelector("tag", "t1"), time.time()) == 2
    s.close()
    again = store(tmp_path)
    assert again.lookup("http://h/a", {}) is None and again.lookup("http://h/b", {}) is None
    assert again.lookup("http://h/c", {}) is not None


def test_soft_purge_of_everything_persists_so_entries_come_back_stale(tmp_path):
    s = store(tmp_path)
    s.put(entry("http://h/a", response_time=time.time() - 10))
    now = time.time()
    assert s.purge(PurgeSelector("all", "", soft=True), now) == 1
    again = store(tmp_path)
    got = again.lookup("http://h/a", {})
    assert got is not None  # kept as a validator source
    assert got.freshness.freshness_lifetime <= got.freshness.age(now) + 1e-6  # stale
    fresh = entry("http://h/new")
    again.put(fresh)  # stored after the mark: not affected
    third = store(tmp_path)
    assert third.lookup("http://h/new", {}).freshness.freshness_lifetime == 3600


def test_a_write_overtaken_by_a_purge_is_discarded(tmp_path):
    disk = DiskTier(tmp_path, 10**6, fsync=False)
    disk._queue = queue.Queue()  # queue writes without a thread, to order them by hand
    e = entry("http://h/a")
    assert disk.put(e)
    assert disk.get("http://h/a", {}) is e  # queued, served from the pending entry
    assert disk.purge(PurgeSelector("url", "http://h/a"), time.time()) == {("http://h/a", ())}
    disk._write(*disk._queue.get_nowait())  # the writer gets to it after the purge
    assert list(tmp_path.rglob("*" + SUFFIX)) == [] and list(tmp_path.rglob("*.tmp")) == []
    assert DiskTier(tmp_path, 10**6, fsync=False).stats()["entries"] == 0
