"""Memory of a MemoryStore: how many bytes an entry really costs, and RSS vs charged bytes.

``python -m bench.hit_ratio.memory`` stores N responses of 1 KiB (built by the node's own
``build_entry`` from realistic origin headers) and reports the growth of the process's RSS
against the bytes the store charged (target: RSS <= 1.3 x charged) and against the
body bytes. ``--overhead`` re-measures the per-entry overhead constants of
``cdn_core/store/entry.py`` with tracemalloc (what the store charges for an entry's
objects and its index slots, beyond the head and body bytes).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc

from cdn_core.node.exchange.entries import build_entry
from cdn_core.node.exchange.request import Request
from cdn_core.node.settings.cache import CacheSettings
from cdn_core.store import MemoryStore, StoredResponse
from cdn_core.store.policy import POLICIES, PolicyName

BASE_HEADERS = [
    ("Content-Type", "application/octet-stream"),
    ("Cache-Control", "public, max-age=3600"),
    ("ETag", '"5f3c-1a2b3c4d"'),
    ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
    ("Date", "Tue, 02 Jan 2024 00:00:00 GMT"),
    ("Server", "origin"),
    ("Accept-Ranges", "bytes"),
    ("X-Request-Id", "0123456789abcdef0123456789abcdef"),
]
SETTINGS = CacheSettings()


def make_entry(i: int, body_size: int = 1024, extra_headers: int = 0) -> StoredResponse:
    host = "www.example.test"
    target = f"/assets/img/{i:08d}.bin"
    req = Request("GET", target, [("Host", host)], {"host": host}, "1.1", True, b"", "127.0.0.1")
    headers = list(BASE_HEADERS)
    headers += [(f"X-Extra-{j}", f"value-{i}-{j}-" + "v" * 20) for j in range(extra_headers)]
    return build_entry(
        key=f"http://{host}{target}",
        host=host,
        req=req,
        status=200,
        reason="OK",
        headers=headers,
        body=os.urandom(body_size),
        request_time=1.7e9,
        response_time=1.7e9,
        settings=SETTINGS,
        via="1.1 mid1",
    )


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def traced_cost(n: int, policy: PolicyName, extra_headers: int) -> tuple[float, StoredResponse]:
    """Bytes allocated per stored entry (entry objects, body, head and store indexes)."""
    store = MemoryStore(max_bytes=1 << 40, max_object_bytes=1 << 30, policy=policy)
    warm = [make_entry(-1 - i, extra_headers=extra_headers) for i in range(256)]
    for e in warm:
        store.put(e)
    del warm
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        store.put(make_entry(i, extra_headers=extra_headers))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n, make_entry(0, extra_headers=extra_headers)


def overhead(n: int) -> None:
    from cdn_core.store import entry as entry_mod

    print("policy    headers  traced B/entry  charged B/entry  charged/traced")
    for policy in POLICIES:
        for extra in (0, 8, 24):
            cost, sample = traced_cost(n, policy, extra)
            charged = sample.compute_size()
            ratio = charged / cost
            print(f"{policy:9} {len(sample.headers):7} {cost:15.0f} {charged:16} {ratio:15.3f}")
    print(
        f"constants: ENTRY_OVERHEAD_BYTES={entry_mod.ENTRY_OVERHEAD_BYTES} "
        f"HEADER_OVERHEAD_BYTES={entry_mod.HEADER_OVERHEAD_BYTES} "
        f"TAG_OVERHEAD_BYTES={entry_mod.TAG_OVERHEAD_BYTES}"
    )


def rss(n: int, policy: PolicyName, body_size: int) -> dict[str, float]:
    store = MemoryStore(max_bytes=1 << 40, max_object_bytes=1 << 30, policy=policy)
    for i in range(256):
        store.put(make_entry(-1 - i, body_size))
    gc.collect()
    base_rss, base_charged = rss_bytes(), store.bytes
    started = time.perf_counter()
    for i in range(n):
        store.put(make_entry(i, body_size))
    elapsed = time.perf_counter() - started
    gc.collect()
    grown = rss_bytes() - base_rss
    charged = store.bytes - base_charged
    return {
        "entries": n,
        "rss_mib": grown / 2**20,
        "charged_mib": charged / 2**20,
        "body_mib": n * body_size / 2**20,
        "rss_per_charged": grown / charged,
        "rss_per_body": grown / (n * body_size),
        "put_us": elapsed / n * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200_000, help="objects to store (default 200000)")
    ap.add_argument("--policy", choices=POLICIES, default="wtinylfu")
    ap.add_argument("--body", type=int, default=1024, help="body bytes (default 1024)")
    ap.add_argument("--overhead", action="store_true", help="re-measure entry overhead")
    args = ap.parse_args()
    if args.overhead:
        overhead(min(args.n, 20_000))
        return
    r = rss(args.n, args.policy, args.body)
    print(
        f"{r['entries']} x {args.body} B objects, policy {args.policy}: "
        f"RSS +{r['rss_mib']:.1f} MiB, "
        f"charged {r['charged_mib']:.1f} MiB, bodies {r['body_mib']:.1f} MiB; "
        f"RSS/charged {r['rss_per_charged']:.2f}, RSS/body {r['rss_per_body']:.2f}; "
        f"{r['put_us']:.1f} us per build+put"
    )


if __name__ == "__main__":
    main()
