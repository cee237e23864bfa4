"""Two services on the real stack (issue 20): a second origin process serving another
directory, the same path giving each site's own content through every edge with
separate cache entries and purges; a redirect, a header rule, a cache rule and a
query-key rule that change behaviour after `activate --wait` and revert after
`rollback`; a key scoped to one service refused on the other; DNS answering the new
domain after activation and NXDOMAIN after deletion."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
import yaml
from stackproc import SITE, get_json

pytestmark = [pytest.mark.chain, pytest.mark.timeout(180)]
SECOND = "second.example.test"


def get(edge: str, path: str, host: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection(edge, 8080, timeout=10)
    c.request("GET", path, headers={"Host": host, **headers})
    r = c.getresponse()
    body = r.read()
    fields = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, fields, body


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def resolve(stack, name: str) -> tuple[int, list[str]]:
    r = dns.query.udp(dns.message.make_query(name, "A"), stack.router[0],
                      port=stack.router[1], timeout=2)
    return r.rcode(), [rr.address for rrset in r.answer for rr in rrset]


def until(check, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.fixture(scope="module")
def second_origin(stack, tmp_path_factory):
    root = tmp_path_factory.mktemp("second-site")
    (root / "index.html").write_text("<html>the second site</html>\n")
    host = stack.config.origin.host
    port, admin = free_port(host), free_port(host)
    proc = subprocess.Popen([sys.executable, "-m", "origin", "--host", host, "--port",
                             str(port), "--admin-port", str(admin), "--root", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    assert until(lambda: _answers(host, admin)), "second origin did not start"
    yield f"http://{host}:{port}", f"http://{host}:{admin}"
    proc.terminate()
    proc.wait(10)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def apply(stack, tmp_path: Path, document: dict, *flags: str) -> str:
    path = tmp_path / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document))
    r = stack.cdnctl("services", "apply", str(path), "--activate", "--wait", *flags)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_two_services_versions_keys_and_dns(stack, second_origin, tmp_path):
    url, admin = second_origin
    document = {"name": "second", "domains": [SECOND], "origins": {"servers": [{"url": url}]}}
    assert resolve(stack, SECOND)[0] == dns.rcode.NXDOMAIN
    apply(stack, tmp_path, document)
    for edge in stack.edges:  # same path, each site's own content, every edge
        assert get(edge, "/index.html", SECOND)[2] == b"<html>the second site</html>\n"
        assert b"the second site" not in get(edge, "/index.html", SITE)[2]
    hits = get_json(f"{admin}/status")["by_path"]["/index.html"]
    assert hits == 1  # three edges, one fill through the shield
    assert until(lambda: resolve(stack, SECOND)[1]), "the router never answered the domain"
    assert set(resolve(stack, SECOND)[1]) <= set(stack.edges)

    # version 2: a redirect, a response header, a cache rule, a query-key rule
    v2 = {**document,
          "request_rules": [{"match": {"path_prefix": "/old/"},
                             "redirect": {"status": 301, "to": "/index.html"}}],
          "response_rules": [{"set_headers": {"X-Site": "second"}}],
          "cache_rules": [{"match": {"statuses": [404]}, "ttl": 120}],
          "cache_key": {"query": {"mode": "ignore"}}}
    out = apply(stack, tmp_path, v2)
    assert "version 2 created" in out and "on 5/5 nodes" in out
    edge = stack.edges[0]
    status, h, _ = get(edge, "/old/page", SECOND)
    assert status == 301 and h["location"] == "/index.html"
    assert get(edge, "/index.html", SECOND)[1]["x-site"] == "second"
    get(edge, "/index.html?a=1", SECOND)
    _, h, _ = get(edge, "/index.html?b=2", SECOND)
    assert "hit" in h["cache-status"].split(",")[-1]  # the query is not in the key
    get(edge, "/missing", SECOND)
    _, h, _ = get(edge, "/missing", SECOND)
    assert "hit" in h["cache-status"].split(",")[-1]  # 404s kept by the cache rule

    r = stack.cdnctl("services", "rollback", "second", "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    assert get(edge, "/old/page", SECOND)[0] == 404
    assert "x-site" not in get(edge, "/index.html", SECOND)[1]

    # a key for one service cannot purge the other
    r = stack.cdnctl("keys", "create", "ci", "--role", "purger", "--service", "second",
                     "--json")
    key = json.loads(r.stdout)["key"]
    r = stack.cdnctl("purge", f"http://{SITE}/index.html", "--key", key)
    assert r.returncode == 1 and "403" in r.stderr
    r = stack.cdnctl("purge", "--service", "second", "--key", key)
    assert r.returncode == 0, r.stdout + r.stderr
    _, h, _ = get(edge, "/index.html", SECOND)
    assert "hit" not in h["cache-status"].split(",")[-1]
    _, h, _ = get(edge, "/index.html", SITE)
    assert "hit" in h["cache-status"].split(",")[-1]  # the other service kept its objects

    r = stack.cdnctl("services", "delete", "second")
    assert r.returncode == 0, r.stderr
    assert until(lambda: resolve(stack, SECOND)[0] == dns.rcode.NXDOMAIN)
    assert until(lambda: get(edge, "/index.html", SECOND)[0] == 421)
