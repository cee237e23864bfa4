"""The router answers the domains of the control plane's active services (issue 20):
inside a configured zone, in a zone made for a new apex, wildcards included; NXDOMAIN
again once a service is gone."""

from __future__ import annotations

import dns.rcode
from resolverworld import World

from router.control import parse_domains

EDGE_ADDRESSES = {"192.0.2.1", "192.0.2.2", "192.0.2.3"}


def test_service_domains_are_answered_with_edges_and_removed_ones_are_nxdomain():
    w = World()
    assert w.ask("shop.example.test").rcode() == dns.rcode.NXDOMAIN
    w.resolver.set_service_domains(["shop.example.test", "www.shop.example.com",
                                    "*.blog.example.org"])
    w.table.invalidate()
    assert set(w.addresses(name="shop.example.test")) <= EDGE_ADDRESSES
    assert set(w.addresses(name="www.shop.example.com")) <= EDGE_ADDRESSES
    assert set(w.addresses(name="a.b.blog.example.org")) <= EDGE_ADDRESSES
    r = w.ask("shop.example.com", "SOA")  # the made zone has the configured SOA and NS
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0].rdtype == 6
    assert w.ask("blog.example.org").rcode() == dns.rcode.NOERROR  # NODATA: no edges
    assert not w.ask("blog.example.org").answer
    assert w.ask("www.example.test").rcode() == dns.rcode.NOERROR  # configured: stays
    w.resolver.set_service_domains(["www.shop.example.com"])
    w.table.invalidate()
    assert w.ask("shop.example.test").rcode() == dns.rcode.NXDOMAIN
    assert w.ask("a.blog.example.org").rcode() == dns.rcode.REFUSED  # no zone any more


def test_parse_domains_reads_every_active_document():
    body = {"services": [{"document": {"domains": ["B.example.test."]}},
                         {"document": {"domains": ["a.example.test", "*.c.example.test"]}},
                         {"document": "junk"}]}
    assert parse_domains(body) == ["*.c.example.test", "a.example.test", "b.example.test"]
