"""The HTTP/2 benchmark's parsing and report (bench/perf/h2.py), on h2load's real output
format and on made-up rows."""

from __future__ import annotations

import pytest

from bench.perf.h2 import parse_args, parse_h2load, render

H2LOAD = """starting benchmark...
finished in 8.00s, 50013.50 req/s, 55.12MB/s
requests: 400108 total, 400608 started, 400108 done, 400100 succeeded, 6 failed, 2 errored, 0 timeout
status codes: 400100 2xx, 0 3xx, 0 4xx, 0 5xx
                     min         max         mean         sd        +/- sd
time for request:      412us     91.24ms      9.78ms      2.11ms    80.12%
"""


def test_h2load_summary_is_read():
    assert parse_h2load(H2LOAD) == {"requests": 400100, "failed": 8, "rps": 50013.5,
                                    "mean_ms": 9.78}


def test_h2load_without_a_summary_is_an_error():
    with pytest.raises(ValueError, match="no h2load summary"):
        parse_h2load("connect: Connection refused\n")


def test_report_ratios_are_per_round_against_nginx():
    rows = [
        {"round": r, "size": "1k", "server": s, "protocol": p, "rps": rps, "mean_ms": 1.0,
         "server_cores": 1.0, "req_per_cpu_s": rps, "failed": 0}
        for r, s, p, rps in [(1, "nginx", "h2", 1000), (1, "edge", "h2", 500),
                             (1, "edge", "h3", 100), (2, "nginx", "h2", 2000),
                             (2, "edge", "h2", 1000), (2, "edge", "h3", 200)]
    ]
    md = render(rows, {"started": "now", "sizes": ["1k"], "versions": "v", "command": "c"})
    edge_h2 = next(line for line in md.splitlines() if "| edge | h2 |" in line)
    edge_h3 = next(line for line in md.splitlines() if "| edge | h3 |" in line)
    assert "| 0.50x |" in edge_h2 and "| 0.10x |" in edge_h3


def test_bad_sizes_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "2k"])
    assert "sizes are 1k,100k,1m" in capsys.readouterr().err
