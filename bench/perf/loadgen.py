"""Small asyncio load generators for what wrk cannot do; run as a subprocess (so it can
be pinned with taskset) and print one JSON line.

``cold``: the miss test. Open C connections, and when every one is connected send one
``GET`` on each at once, request i asking for key ``i % K`` (all keys cold: a fresh
query string per run). Reports wall time from the first send to the last complete
response, latency percentiles, status counts.

``fill``: the memory test's loader. Fetch N distinct keys over C keep-alive connections.

    python -m bench.perf.loadgen cold --port P --path /obj/100k --tag r1 --conns 1000 --keys 100
    python -m bench.perf.loadgen fill --port P --path /obj/1k --tag m --count 20000 --conns 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Read one response with a Content-Length body; returns (status, body bytes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status, length


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def cold(a: argparse.Namespace) -> dict[str, Any]:
    connected: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    errors: Counter[str] = Counter()

    async def connect() -> None:
        try:
            connected.append(await asyncio.open_connection("127.0.0.1", a.port))
        except OSError as exc:
            errors[f"connect: {exc.strerror or exc}"] += 1

    await asyncio.gather(*(connect() for _ in range(a.conns)))
    go = asyncio.Event()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    done_at: list[float] = []

    async def one(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        key = f"{a.path}?cold={a.tag}-{i % a.keys}"
        t0 = time.perf_counter()
        try:
            writer.write(
                f"GET {key} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            # Connection: close, so the response ends at EOF whatever its framing.
            data = await asyncio.wait_for(reader.read(-1), a.timeout)
            t1 = time.perf_counter()
            status = int(data.split(b" ", 2)[1])
            statuses[status] += 1
            latencies.append(t1 - t0)
            done_at.append(t1)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            errors[type(exc).__name__] += 1
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(one(i, r, w)) for i, (r, w) in enumerate(connected)]
    await asyncio.sleep(0.2)  # every task is waiting on `go`
    start = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    wall = (max(done_at) if done_at else time.perf_counter()) - start
    ok = sum(c for s, c in statuses.items() if s == 200)
    return {
        "requests": len(connected),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "wall_s": round(wall, 4),
        "rps": round(ok / wall, 1) if wall > 0 else None,
        "p50_ms": round(_pct(latencies, 50) * 1000, 2) if latencies else None,
        "p99_ms": round(_pct(latencies, 99) * 1000, 2) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
    }


async def fill(a: argparse.Namespace) -> dict[str, Any]:
    keys = iter(range(a.count))
    statuses: Counter[int] = Counter()
    body_bytes = 0

    async def worker() -> None:
        nonlocal body_bytes
        reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
        try:
            for i in keys:
                target = f"{a.path}?mem={a.tag}-{i}"
                writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\n\r\n".encode())
                status, n = await asyncio.wait_for(_read_response(reader), a.timeout)
                statuses[status] += 1
                body_bytes += n
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(a.conns)))
    return {
        "requests": a.count,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "body_bytes": body_bytes,
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["cold", "fill"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        run = asyncio.run
    result = run(cold(a) if a.mode == "cold" else fill(a))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
