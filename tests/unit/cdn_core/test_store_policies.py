"""Eviction and admission policies (policy_*.py) and the frequency sketch, driven directly
with integer keys: admission decisions, eviction order and byte accounting."""

import random

import pytest

from cdn_core.store.policies import make_policy
from cdn_core.store.policy import POLICIES
from cdn_core.store.policy_lru import LRUPolicy
from cdn_core.store.policy_s3fifo import S3FIFOPolicy
from cdn_core.store.policy_sizesplit import SizeSplitPolicy
from cdn_core.store.policy_wtinylfu import WTinyLFUPolicy
from cdn_core.store.sketch import FrequencySketch


class Recorder:
    def __init__(self):
        self.evicted = []

    def __call__(self, key, reason):
        self.evicted.append((key, reason))


# sketch -------------------------------------------------------------------------------
def test_sketch_doorkeeper_counts_from_the_second_occurrence_and_estimates_min():
    s = FrequencySketch(1024)
    assert s.frequency(hash("a")) == 0
    s.increment(hash("a"))
    assert s.frequency(hash("a")) == 1  # doorkeeper only
    for _ in range(5):
        s.increment(hash("a"))
    assert s.frequency(hash("a")) == 6
    assert s.frequency(hash("never")) == 0


def test_sketch_ages_by_halving_and_clears_the_doorkeeper():
    s = FrequencySketch(16, sample_factor=10)  # a sample of 160 increments
    for _ in range(9):
        s.increment(7)
    assert s.frequency(7) == 9  # doorkeeper + 8
    for i in range(1000, 1000 + 160 - 9):
        s.increment(i)
    assert s.frequency(7) == 4  # counters halved, doorkeeper cleared


def test_sketch_growth_keeps_every_estimate():
    s = FrequencySketch(64)
    keys = [hash(("k", i)) for i in range(200)]
    for i, h in enumerate(keys):
        for _ in range(i % 9):
            s.increment(h)
    before = [s.frequency(h) for h in keys]
    s.ensure_capacity(4096)
    assert [s.frequency(h) for h in keys] == before
    assert s.sample_size == s.sample_factor * 4096


# shared invariants --------------------------------------------------------------------
@pytest.mark.parametrize("name", POLICIES)
def test_byte_accounting_and_callbacks_stay_consistent(name):
    rec = Recorder()
    p = make_policy(name, 5_000, rec)
    rng = random.Random(1)
    sizes = {}
    resident = set()
    for step in range(4000):
        key = int(rng.paretovariate(1.0)) % 300
        size = sizes.setdefault(key, rng.randint(1, 400))
        if key in p:
            assert key in resident
            p.hit(key, key)
        else:
            assert key not in resident
            p.miss(key)
            rec.evicted.clear()
            kept = p.insert(key, key, size)
            resident.add(key)
            for k, _ in rec.evicted:
                resident.discard(k)
            assert kept == (key in resident)
        if step % 97 == 0 and resident:
            gone = rng.choice(sorted(resident))
            p.remove(gone)
            resident.discard(gone)
        assert p.used == sum(sizes[k] for k in resident) <= p.max_bytes
        assert len(p) == len(resident)


@pytest.mark.parametrize("name", POLICIES)
def test_objects_larger_than_the_budget_are_refused(name):
    p = make_policy(name, 1000)
    assert not p.insert("big", 1, 1001) and "big" not in p and p.used == 0


@pytest.mark.parametrize("name", POLICIES)
def test_replace_takes_the_old_keys_place(name):
    p = make_policy(name, 1000)
    p.insert("old", 1, 100)
    assert p.replace("old", "new", 150)
    assert "old" not in p and "new" in p and p.used == 150


# LRU ----------------------------------------------------------------------------------
def test_lru_evicts_least_recently_used_first():
    rec = Recorder()
    p = LRUPolicy(300, rec)
    for k in "abc":
        p.insert(k, 0, 100)
    p.hit("a", 0)
    p.insert("d", 0, 100)
    assert rec.evicted == [("b", "capacity")]
    p.insert("e", 0, 200)  # needs two victims: c, then a
    assert rec.evicted[1:] == [("c", "capacity"), ("a", "capacity")]


# W-TinyLFU ----------------------------------------------------------------------------
def fill_main(p, keys, hits):
    for k in keys:
        p.miss(k)
        p.insert(k, k, 10)
        for _ in range(hits):
            p.hit(k, k)


def test_wtinylfu_frequent_keys_survive_a_scan_of_one_hit_wonders():
    rec = Recorder()
    p = WTinyLFUPolicy(1000, rec, adaptive=False)  # window 10 bytes: one entry
    hot = list(range(90))
    fill_main(p, hot, 3)
    for k in range(1000, 3000):  # each requested once
        p.miss(k)
        p.insert(k, k, 10)
    assert all(k in p for k in hot)
    assert sum(1 for k, r in rec.evicted if r == "admission") >= 1900


def test_wtinylfu_admits_a_candidate_more_frequent_than_its_victim():
    rec = Recorder()
    p = WTinyLFUPolicy(1000, rec, adaptive=False)
    fill_main(p, range(100), 0)  # full: window 10 bytes + main 990
    for _ in range(5):
        p.miss(500)
    p.insert(500, 500, 10)  # enters the window
    p.miss(501)
    p.insert(501, 501, 10)  # pushes 500 out of the window: it beats a once-seen victim
    assert 500 in p
    assert any(r == "capacity" for _, r in rec.evicted)


def test_wtinylfu_large_candidate_must_beat_every_victim_and_evicts_none_if_it_loses():
    rec = Recorder()
    p = WTinyLFUPolicy(1000, rec, adaptive=False)
    fill_main(p, range(100), 0)  # probation holds 0..98 (LRU first), the window 99
    p.miss(3)
    p.miss(3)  # the fourth victim in line: seen three times
    for _ in range(3):
        p.miss(900)  # the candidate too: ties go to the victim
    rec.evicted.clear()
    assert not p.insert(900, 900, 50)  # > 1% of the budget: straight to admission
    assert rec.evicted == [(900, "admission")]
    assert p.used == 1000 and all(k in p for k in range(100))
    p.miss(900)  # now more frequent than each of the five victims it needs
    assert p.insert(900, 900, 50)
    assert rec.evicted[1:] == [(k, "capacity") for k in range(5)]


def test_wtinylfu_window_grows_when_dropped_candidates_come_back():
    p = WTinyLFUPolicy(10_000, Recorder())  # 100 objects of 100 bytes
    start = p.window_max
    hits = []
    # Every object is requested twice, 6 requests apart: pure recency (LRU hits every
    # second request), so the frequency filter drops each newcomer before its reuse,
    # and the ghost of dropped candidates (10% of the budget) sees it come back.
    for i in range(3000):
        hits.append(p.access(i, i, 100))
        if i >= 6:
            hits.append(p.access(i - 6, i - 6, 100))
    assert p.window_max > 5 * start
    assert sum(hits[-1000:]) > 450  # about every second request hits at the end


def test_wtinylfu_hits_promote_probation_to_protected():
    p = WTinyLFUPolicy(1000, Recorder(), adaptive=False)
    fill_main(p, range(5), 0)
    p.insert(99, 99, 10)  # pushes key 4 from the window into probation
    assert 0 in p._probation
    p.hit(0, 0)
    assert 0 in p._protected and 0 not in p._probation


# S3-FIFO ------------------------------------------------------------------------------
def test_s3fifo_one_hit_wonders_leave_through_the_small_queue_into_the_ghost():
    rec = Recorder()
    p = S3FIFOPolicy(1000, rec)  # small queue: 100 bytes
    for k in range(200):
        p.insert(k, k, 10)
    assert rec.evicted and {r for _, r in rec.evicted} <= {"admission", "capacity"}
    dropped = [k for k, r in rec.evicted if r == "admission"]
    assert dropped
    k = dropped[-1]
    assert k not in p
    p.insert(k, k, 10)  # remembered by the ghost: straight into main
    assert k in p._main


def test_s3fifo_reaccessed_small_keys_move_to_main_and_main_reinserts_accessed_keys():
    rec = Recorder()
    p = S3FIFOPolicy(1000, rec)
    for k in range(100):
        p.insert(k, k, 10)  # fills the cache (small first, then main before any eviction)
    small_keys = list(p._small)
    p.hit(small_keys[0], 0)
    for k in range(1000, 1020):
        p.insert(k, k, 10)
    assert small_keys[0] in p._main
    main_first = next(iter(p._main))
    p.hit(main_first, 0)
    for k in range(2000, 2200):
        p.insert(k, k, 10)
    assert main_first in p or (main_first, "capacity") in rec.evicted


def test_s3fifo_object_larger_than_the_small_queue_is_admitted_on_its_second_request():
    rec = Recorder()
    p = S3FIFOPolicy(1000, rec)
    assert not p.insert("big", 42, 300)
    assert rec.evicted == [("big", "admission")]
    assert p.insert("big", 42, 300) and "big" in p._main


# size split ---------------------------------------------------------------------------
def split(rec=None):
    # 10,000 bytes: objects over 100 bytes are large; the large part's share is 7,000.
    return SizeSplitPolicy(10_000, rec or Recorder(), threshold_fraction=0.01, large_share=0.7)


def test_sizesplit_routes_by_size_and_either_part_may_fill_an_idle_budget():
    p = split()
    for k in range(50):  # 50 x 200 B large objects: the whole budget, no small ones
        p.insert(("L", k), k, 200)
    assert p._large.used == 10_000 and p._small.used == 0
    q = split()
    for k in range(100):
        q.miss(k)
        q.insert(("s", k), k, 100)
    assert q._small.used == 10_000 and q._large.used == 0 and len(q) == 100


def test_sizesplit_each_part_claims_its_share_back_and_no_more():
    rec = Recorder()
    p = split(rec)
    for k in range(50):
        p.insert(("L", k), k, 200)
    for k in range(30):  # 3,000 B of small objects: large gives back down to its share
        p.miss(k)
        p.insert(("s", k), k, 100)
    assert p._large.used == 7_000 and p._small.used == 3_000
    assert rec.evicted == [(("L", k), "capacity") for k in range(15)]  # LRU first
    for k in range(30, 50):  # large is at its share: small now evicts its own
        p.miss(k)
        p.insert(("s", k), k, 100)
    assert p._large.used == 7_000 and p._small.used <= 3_000
    for k in range(15, 35):  # 4,000 B of large objects leave: small may borrow them
        p.remove(("L", k))
    for k in range(100, 140):
        p.miss(k)
        p.insert(("s", k), k, 100)
    assert p._small.used == 7_000
    for k in range(20):  # and large claims its share back from small, no more
        p.insert(("L2", k), k, 200)
    assert p._large.used == 7_000 and p._small.used == 3_000


def test_sizesplit_an_object_larger_than_its_parts_room_is_refused_and_reported():
    # Small objects hold the small part's share (3,000 B): a 7,500 B object cannot fit in
    # the large part's 7,000 B. The store must hear of the refusal, or it would keep
    # indexing an entry the policy does not hold.
    rec = Recorder()
    p = split(rec)
    for k in range(30):
        p.miss(k)
        p.insert(("s", k), k, 100)
        p.hit(("s", k), k)
    assert not p.insert("huge", 1, 7_500) and "huge" not in p
    assert rec.evicted == [("huge", "admission")] and p.used == 3_000
    # Refused before anything moves: small objects borrowing beyond their share stay put.
    q_rec = Recorder()
    q = split(q_rec)
    for k in range(90):
        q.miss(k)
        q.insert(("s", k), k, 100)
    assert q._small.used == 9_000
    assert not q.insert("huge", 1, 7_500)
    assert q_rec.evicted == [("huge", "admission")] and q._small.used == 9_000
    p.insert("big", 2, 5_000)
    assert not p.replace("big", "bigger", 7_500) and "big" not in p and "bigger" not in p
    assert rec.evicted[-1] == ("bigger", "admission") and p.used == 3_000


def test_sizesplit_a_scan_of_large_objects_leaves_the_hot_small_set():
    p = split()
    hot = range(30)
    for k in hot:
        p.miss(k)
        p.insert(k, k, 100)
        p.hit(k, k)
    for k in range(1000, 1300):  # one-hit-wonder large objects, 60,000 B in all
        p.miss(k)
        p.insert(k, k, 200)
    assert all(k in p for k in hot)


def test_sizesplit_replace_across_the_threshold_moves_the_entry_to_the_other_part():
    p = split()
    p.insert("v", 1, 50)
    assert p.replace("v", "v2", 500) and "v2" in p._large and "v" not in p
    assert p.replace("v2", "v3", 60) and "v3" in p._small and p.used == 60


def test_sizesplit_wins_bytes_over_wtinylfu_and_objects_over_lru_on_a_mixed_workload():
    # Many small objects (Zipf-like popularity) and large objects reused in bursts: the
    # shape of the Download trace, where no single policy wins both ratios.
    rng = random.Random(7)
    reqs = []
    for i in range(60_000):
        if rng.random() < 0.8:
            reqs.append((int(rng.paretovariate(0.8)) % 5_000, 10))
        else:
            reqs.append((100_000 + (i // 2_000) * 20 + rng.randrange(20), 2_000))
    total = sum(s for _, s in reqs)

    def ratios(policy):
        hits = hit_bytes = 0
        for key, size in reqs:
            if policy.access(key, key, size):
                hits += 1
                hit_bytes += size
        return hits / len(reqs), hit_bytes / total

    budget = 50_000
    ohr, bhr = ratios(make_policy("sizesplit", budget))
    w_ohr, w_bhr = ratios(make_policy("wtinylfu", budget))
    l_ohr, l_bhr = ratios(make_policy("lru", budget))
    assert bhr > w_bhr and ohr > l_ohr
