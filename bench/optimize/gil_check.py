"""Does an encoder release the GIL? Run each encoder in a worker thread for about a
second while the main thread sleeps 1 ms at a time, and report how late the main thread
wakes. If an encoder held the GIL, wake-ups would be late by up to the length of one
encode call; if it releases it, they stay near the scheduler's noise.

    python -m bench.optimize.gil_check

Backs the choice of threads in :mod:`cdn_core.optimize.pool`.
"""

from __future__ import annotations

import io
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import brotli
from PIL import Image

SITE = Path(__file__).parents[2] / "examples" / "site"


def encoders() -> dict[str, Callable[[], object]]:
    text = (SITE / "js" / "app.js").read_bytes() * 300
    jpg = (SITE / "images" / "rocket.jpg").read_bytes()
    im = Image.open(io.BytesIO(jpg))
    im.load()
    big = im.resize((im.width * 3, im.height * 3))
    return {
        "zlib level 6": lambda: zlib.compress(text, 6),
        "brotli q9": lambda: brotli.compress(text, quality=9),
        "jpeg decode": lambda: Image.open(io.BytesIO(jpg)).load(),
        "lanczos resize": lambda: big.resize(
            (big.width // 2, big.height // 2), Image.Resampling.LANCZOS
        ),
        "webp encode": lambda: big.save(io.BytesIO(), "WEBP", quality=75),
        "avif encode": lambda: big.save(io.BytesIO(), "AVIF", quality=50, speed=6, max_threads=1),
    }


def wake_latencies(stop: threading.Event) -> list[float]:
    late = []
    while not stop.is_set():
        t = time.perf_counter()
        time.sleep(0.001)
        late.append(time.perf_counter() - t - 0.001)
    return sorted(late)


def main() -> None:
    for name, fn in encoders().items():
        t = time.perf_counter()
        fn()
        one = time.perf_counter() - t
        stop = threading.Event()

        def work(
            fn: Callable[[], object] = fn, stop: threading.Event = stop, one: float = one
        ) -> None:
            end = time.perf_counter() + max(1.0, 2 * one)
            while time.perf_counter() < end:
                fn()
            stop.set()

        th = threading.Thread(target=work)
        th.start()
        late = wake_latencies(stop)
        th.join()
        p50, p99 = late[len(late) // 2], late[int(len(late) * 0.99)]
        print(
            f"{name:15s} one call {one * 1000:7.1f} ms | loop wakes late by "
            f"p50 {p50 * 1000:5.2f} p99 {p99 * 1000:6.2f} max {late[-1] * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
