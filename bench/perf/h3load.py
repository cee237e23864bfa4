"""``python -m bench.perf.h3load URL --connect ADDR:PORT [-c N] [-m M] [-D S]``: a
closed-loop HTTP/3 load generator on aioquic (h2load's role for HTTP/3, where the
installed h2load has no QUIC): N connections, M requests in flight on each, for S
seconds. Prints one JSON line: requests, succeeded, failed, seconds, mean_ms."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from urllib.parse import urlsplit

from aioquic.asyncio.client import connect
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration

from bench.h3get import _Client


async def _connection(host: str, port: int, authority: str, path: str, streams: int,
                      until: float, out: dict[str, float]) -> None:
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=host)
    config.verify_mode = ssl.CERT_NONE  # a benchmark, as h2load does not verify either
    async with connect(host, port, configuration=config, create_protocol=_Client) as client:
        assert isinstance(client, _Client)

        async def loop() -> None:
            while time.monotonic() < until:
                t0 = time.monotonic()
                r = await client.request("GET", authority, path, [])
                out["latency"] += time.monotonic() - t0
                out["requests"] += 1
                out["succeeded" if 200 <= r.status < 300 else "failed"] += 1

        await asyncio.gather(*(loop() for _ in range(streams)))


async def run(url: str, connect_to: tuple[str, int], conns: int, streams: int,
              duration: float) -> dict[str, float]:
    parts = urlsplit(url)
    authority = parts.netloc
    path = parts.path or "/"
    out = {"requests": 0, "succeeded": 0, "failed": 0, "latency": 0.0}
    t0 = time.monotonic()
    await asyncio.wait_for(
        asyncio.gather(*(_connection(connect_to[0], connect_to[1], authority, path,
                                     streams, t0 + duration, out) for _ in range(conns))),
        duration + 30,
    )
    secs = time.monotonic() - t0
    mean = out.pop("latency") / out["requests"] * 1000 if out["requests"] else 0.0
    return {**out, "seconds": round(secs, 3), "mean_ms": round(mean, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.perf.h3load", description=__doc__)
    p.add_argument("url")
    p.add_argument("--connect", required=True, help="ADDR:PORT (UDP)")
    p.add_argument("-c", "--clients", type=int, default=10)
    p.add_argument("-m", "--max-concurrent-streams", type=int, default=10)
    p.add_argument("-D", "--duration", type=float, default=8.0)
    args = p.parse_args(argv)
    addr, _, port = args.connect.rpartition(":")
    result = asyncio.run(run(args.url, (addr, int(port)), args.clients,
                             args.max_concurrent_streams, args.duration))
    print(json.dumps(result))
    return 0 if result["succeeded"] else 1


if __name__ == "__main__":
    sys.exit(main())
