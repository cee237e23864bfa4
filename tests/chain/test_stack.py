"""Chain test: DNS -> edge -> mid tier -> origin on the real one-host stack (issue 3)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import dns.message
import dns.query
import pytest
from stackproc import SITE

pytestmark = [pytest.mark.chain, pytest.mark.timeout(120)]


def resolve(stack, name: str = SITE, rdtype: str = "A", tcp: bool = False) -> list[str]:
    q = dns.message.make_query(name, rdtype)
    fn = dns.query.tcp if tcp else dns.query.udp
    r = fn(q, stack.router[0], port=stack.router[1], timeout=2)
    return [rr.address for rrset in r.answer for rr in rrset]


def get(edge: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection(edge, 8080, timeout=10)
    c.request("GET", path, headers={"Host": f"{SITE}:8080", **headers})
    r = c.getresponse()
    body = r.read()
    h: dict[str, list[str]] = {}
    for k, v in r.getheaders():
        h.setdefault(k.lower(), []).append(v)
    c.close()
    return r.status, {k: ", ".join(v) for k, v in h.items()}, body


def last_tier_hit(cache_status: str) -> bool:
    return "hit" in [p.strip() for p in cache_status.split(",")[-1].split(";")[1:]]


def test_dns_names_a_healthy_edge_over_udp_and_tcp(stack):
    answer = resolve(stack)
    assert answer and set(answer) <= set(stack.edges)
    assert set(resolve(stack, tcp=True)) <= set(stack.edges)


def test_miss_hit_shield_and_purge(stack):
    edge = resolve(stack)[0]
    s1, h1, b1 = get(edge, "/index.html")
    s2, h2, b2 = get(edge, "/index.html")
    assert (s1, s2) == (200, 200) and b1 == b2 and b"<html" in b1
    assert "age" in h2 and "via" in h2 and last_tier_hit(h2["cache-status"])
    for other in stack.edges:
        if other != edge:
            s, h, _ = get(other, "/index.html")
            assert s == 200 and "hit" in h["cache-status"]
    # three edges, two mid tiers: the origin saw exactly one fetch
    assert stack.origin_count("/index.html") == 1

    r = stack.cdnctl("purge", f"http://{SITE}/index.html")
    assert r.returncode == 0, r.stdout + r.stderr
    for node in ("mid1", "mid2", "edge1", "edge2", "edge3"):
        assert node in r.stdout
    _, h3, _ = get(edge, "/index.html")
    assert not last_tier_hit(h3["cache-status"])
    assert stack.origin_count("/index.html") == 2


def test_conditional_and_head_from_cache(stack):
    edge = resolve(stack)[0]
    _, h, _ = get(edge, "/about.html")
    s, h304, body = get(edge, "/about.html", **{"If-None-Match": h["etag"]})
    assert s == 304 and body == b""
    assert stack.origin_count("/about.html") == 1


def test_cdnctl_status_lists_every_node(stack):
    r = stack.cdnctl("status")
    assert r.returncode == 0, r.stderr
    for node in ("origin", "mid1", "mid2", "edge1", "edge2", "edge3", "router"):
        assert node in r.stdout


def test_https_on_every_edge_with_the_local_ca(stack):
    ctx = ssl.create_default_context(cafile=str(stack.state / "tls" / "ca.pem"))
    for edge in stack.edges:
        c = http.client.HTTPSConnection(edge, 8443, timeout=10, context=ctx)
        # SNI and certificate checks use the site name, while we connect to the edge's address.
        c.sock = ctx.wrap_socket(
            socket.create_connection((edge, 8443), timeout=10),
            server_hostname=SITE,
        )
        c.request("GET", "/index.html", headers={"Host": SITE})
        r = c.getresponse()
        assert r.status == 200 and b"<html" in r.read()
        c.close()


def _listening_pid(addr: str, port: int) -> int:
    out = subprocess.run(["ss", "-ltnpH", f"src {addr}:{port}"], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"pid=(\d+)", out)
    assert m, f"nothing listens on {addr}:{port}"
    return int(m.group(1))


def test_purge_by_tag_acked_by_every_node_even_with_an_edge_stopped(stack):
    for edge in stack.edges:
        assert get(edge, "/gallery.html")[0] == 200
    before = stack.origin_count("/gallery.html")
    r = stack.cdnctl("purge", "--tag", "html", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    purge = json.loads(r.stdout)
    assert purge["state"] == "complete"
    assert all(n["state"] == "acked" for n in purge["nodes"].values())
    for edge in stack.edges:  # no tier serves the old copy: each edge and the mid tier refetch
        _, h, _ = get(edge, "/gallery.html")
        assert not last_tier_hit(h["cache-status"])
    assert stack.origin_count("/gallery.html") == before + 1

    # One edge stopped (SIGSTOP) during the next purge: the purge cannot complete until
    # that edge is back; then the retry loop (or its own catch-up) finishes it.
    victim = stack.edges[2]
    get(victim, "/about.html")
    pid = _listening_pid(victim, 8080)
    os.kill(pid, signal.SIGSTOP)
    try:
        r = stack.cdnctl("purge", "--tag", "html", "--json")
        purge = json.loads(r.stdout)
        assert r.returncode == 1 and purge["state"] != "complete"
    finally:
        os.kill(pid, signal.SIGCONT)
    key = (stack.state / "admin.key").read_text().strip()
    deadline = time.monotonic() + 30
    state = None
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"{stack.api}/v1/purges/{purge['id']}",
                                     headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            state = json.loads(resp.read())["state"]
        if state == "complete":
            break
        time.sleep(0.3)
    assert state == "complete"
    _, h, _ = get(victim, "/about.html")
    assert not last_tier_hit(h["cache-status"])


def test_the_example_site_is_a_service_and_other_hosts_get_421(stack):
    r = stack.cdnctl("services", "list", "--json")
    assert r.returncode == 0, r.stderr
    (example,) = json.loads(r.stdout)["services"]
    assert example["name"] == "example" and example["active_version"] == 1
    assert example["progress"]["state"] == "complete" and example["progress"]["total"] == 5
    edge = stack.edges[0]
    before = stack.origin_count("/js/app.js")  # (the mid tiers probe /robots.txt)
    status, _, body = get(edge, "/js/app.js", Host="other.example:8080")
    assert status == 421 and b"other.example" in body
    assert stack.origin_count("/js/app.js") == before
    # the service's cache key leaves utm_* out: one object for both spellings
    get(edge, "/about.html?utm_source=mail")
    _, h, _ = get(edge, "/about.html?utm_campaign=x")
    assert last_tier_hit(h["cache-status"])
