"""Replaying a trace through one of our policies or one of libCacheSim's."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.hit_ratio.traces import Trace
from cdn_core.store.policies import make_policy
from cdn_core.store.policy import PolicyName

LCS_POLICIES = {"lru": "LRU", "s3fifo": "S3FIFO", "wtinylfu": "WTinyLFU"}


@dataclass
class Result:
    hit_ratio: float
    byte_hit_ratio: float
    seconds: float


def replay_ours(policy: PolicyName, trace: Trace, capacity: int) -> Result:
    """Every request goes through ``Policy.access`` (the same ``hit``/``miss``/``insert``
    code MemoryStore calls), with the object id as key and frequency hash."""
    p = make_policy(policy, capacity)
    access = p.access
    hits = 0
    hit_bytes = 0
    started = time.perf_counter()
    for oid, size in zip(trace.ids, trace.sizes, strict=True):
        if access(oid, oid, size):
            hits += 1
            hit_bytes += size
    total_bytes = sum(trace.sizes)
    return Result(hits / trace.requests, hit_bytes / total_bytes, time.perf_counter() - started)


def replay_libcachesim(policy: str, csv: Path, capacity: int) -> Result | None:
    """libCacheSim's policy ``policy`` (default parameters) over the CSV trace, or None
    when the package is not installed."""
    try:
        import libcachesim as lcs
    except ImportError:
        return None
    p = lcs.ReaderInitParam(
        has_header=True,
        has_header_set=True,
        delimiter=",",
        obj_id_is_num=True,
        obj_id_is_num_set=True,
    )
    p.time_field, p.obj_id_field, p.obj_size_field = 1, 2, 3
    reader = lcs.TraceReader(str(csv), lcs.TraceType.CSV_TRACE, p)
    cache = getattr(lcs, LCS_POLICIES[policy])(capacity)
    started = time.perf_counter()
    # libCacheSim's C code prints warnings to stdout; keep them out of the table.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        obj_miss, byte_miss = cache.process_trace(reader)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return Result(1 - obj_miss, 1 - byte_miss, time.perf_counter() - started)
