"""``python -m bench.perf.hitpath``: the Python cost of one edge cache hit, without sockets.

A real edge :class:`~cdn_core.node.app.Node` (``configs/edge.yaml``, access log off) holds
one fresh 1 KiB object; one connection's protocol is fed the same request N times, and
its transport only counts writes. What is left is exactly the Python hit path: llhttp
callbacks, the proxy, the store lookup, the response writer. The kernel and the event loop
are not in it (``perf`` on a running edge shows those; see bench/README.md).

Reports microseconds per request (best of three passes) for a wrk-like request (one
header field) and a browser-like one (eleven). With ``--instructions`` it also counts CPU
instructions per request under valgrind's callgrind (the difference between a short and a
long run, so start-up cancels out): slower, but steady enough to compare two commits on a
noisy machine.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from typing import Any

from bench.perf.servers import REPO

WRK = b"GET /obj/1k HTTP/1.1\r\nHost: 127.0.0.1:28184\r\n\r\n"
BROWSER = (
    b"GET /obj/1k HTTP/1.1\r\nHost: 127.0.0.1:28184\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\nReferer: http://127.0.0.1:28184/\r\n"
    b"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\nSec-Fetch-Site: same-origin\r\n\r\n"
)
REQUESTS = {"wrk": WRK, "browser": BROWSER}


class CountingTransport:
    """The transport side the protocol uses, counting writes instead of sending."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def writelines(self, parts: Any) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def service_set(services: int, rules: int) -> Any:
    """``services`` services of ``rules // services`` cache rules each (distinct path
    prefixes, none matching the benchmark's path), the first one serving the benchmark's
    host ``127.0.0.1``: what a CDN with many sites costs a hit (issue 20)."""
    from cdn_core.services.compiled import CompiledService, ServiceSet
    from cdn_core.services.validate import validate

    per = max(1, rules // services)
    compiled = {}
    for i in range(services):
        spec, problems = validate({
            "name": f"svc{i}", "domains": ["127.0.0.1" if i == 0 else f"svc{i}.example.test"],
            "origins": {"servers": [{"url": "http://127.0.0.1:9"}]},
            "cache_rules": [{"match": {"path_prefix": f"/r{j}/"}, "ttl": 60}
                            for j in range(per)],
            "cache_key": {"query": {"mode": "deny", "names": ["utm_*"]}},
        })
        assert spec is not None, problems
        compiled[spec.name] = CompiledService.compile(spec, 1)
    return ServiceSet(compiled)


async def per_request_us(kind: str, n: int, passes: int = 3, services: int = 0,
                         rules: int = 0) -> float:
    """Best-of-``passes`` microseconds for one hit of request ``kind``, over ``n`` hits;
    with ``services``, the node runs that many services of ``rules`` cache rules in all
    (:func:`service_set`).

    Raises:
        RuntimeError: a request was not answered with one write (not a hit).
    """
    from cdn_core.config import load_config
    from cdn_core.node.app import Node
    from cdn_core.node.exchange.entries import build_entry
    from cdn_core.node.exchange.request import Request
    from cdn_core.node.settings.node import NodeConfig

    cfg = load_config(
        NodeConfig,
        REPO / "configs" / "edge.yaml",
        {"port": 0, "admin_port": 0, "upstream": {"urls": ["http://127.0.0.1:9"]},
         "access_log": {"sample": 0}},
    )  # fmt: skip
    node = Node(cfg)
    key = "http://127.0.0.1/obj/1k"
    if services:
        node.proxy.services = service_set(services, rules)
        svc = node.proxy.services.select("127.0.0.1")
        key = svc.prepare("GET", "http", "127.0.0.1", "/obj/1k").key
    now = time.time()
    req = Request("GET", "/obj/1k", [("Host", "127.0.0.1")], {"host": "127.0.0.1"}, "1.1",
                  True, b"", "127.0.0.1")  # fmt: skip
    node.store.put(
        build_entry(
            key=key, host="127.0.0.1", req=req, status=200, reason="OK",
            headers=[("Content-Type", "application/octet-stream"),
                     ("Cache-Control", "public, max-age=3600"), ("ETag", '"b1"')],
            body=b"x" * 1024, request_time=now, response_time=now, settings=cfg.cache,
            via=f"1.1 {cfg.name}",
        )  # fmt: skip
    )
    proto = node._protocol()
    transport = CountingTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    data = REQUESTS[kind]
    best = float("inf")
    for _ in range(passes):
        before = transport.writes
        t0 = time.perf_counter()
        for _ in range(n):
            proto.data_received(data)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
        if transport.writes - before != n:
            raise RuntimeError(f"{transport.writes - before} writes for {n} requests: not hits")
    await node.proxy.close()
    return best


def instructions_per_request(kind: str, short: int = 2_000, long: int = 12_000) -> int:
    """CPU instructions per hit under callgrind: (long run - short run) / extra requests.

    Raises:
        RuntimeError: valgrind is missing or a run failed.
    """
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    counts = []
    for n in (short, long):
        p = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             "-m", "bench.perf.hitpath", "--only", kind, "--requests", str(n), "--passes", "1"],
            capture_output=True, text=True, cwd=REPO, timeout=900,
        )  # fmt: skip
        m = re.search(r"Collected : (\d+)", p.stderr)
        if p.returncode != 0 or m is None:
            raise RuntimeError(f"callgrind run failed: {p.stderr[-500:]}")
        counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) // (long - short)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.perf.hitpath", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200_000,
                    help="hits per timed pass (the instruction count always uses runs of "
                    "2,000 and 12,000 hits)")  # fmt: skip
    ap.add_argument("--passes", type=int, default=3, help="passes (the best one counts)")
    ap.add_argument("--only", choices=list(REQUESTS), help="one request kind")
    ap.add_argument("--instructions", action="store_true",
                    help="also count instructions per hit under callgrind (about 1 min)")
    ap.add_argument("--services", type=int, default=0, metavar="N",
                    help="also time hits with N services running (interleaved with the "
                    "plain node) and report the ratio")
    ap.add_argument("--rules", type=int, default=1000, help="cache rules over all services")
    a = ap.parse_args(argv)
    if a.requests < 1 or a.passes < 1:
        ap.error("--requests and --passes must be at least 1")
    import uvloop

    if a.services:
        for kind in [a.only] if a.only else list(REQUESTS):
            plain, many = [], []
            for _ in range(3):  # interleaved: the machine's noise falls on both
                plain.append(uvloop.run(per_request_us(kind, a.requests, a.passes)))
                many.append(uvloop.run(per_request_us(kind, a.requests, a.passes,
                                                      a.services, a.rules)))
            p, m = min(plain), min(many)
            print(f"{kind:8} one implicit site {p:6.2f} us, {a.services} services with "
                  f"{a.rules} rules {m:6.2f} us per hit: {p / m:.3f}x the hits per CPU-second",
                  flush=True)
        return 0
    for kind in [a.only] if a.only else list(REQUESTS):
        us = uvloop.run(per_request_us(kind, a.requests, a.passes))
        line = f"{kind:8} {us:6.2f} us per hit"
        if a.instructions:
            line += f"  {instructions_per_request(kind):,} instructions per hit"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
