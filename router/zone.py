"""Static zone data built from ``zones`` in the config: apex SOA and NS records, in-zone
name server addresses, the service names, and the set of names that exist (owner names
and their ancestors; RFC 1034 3.1, RFC 8020). Pure data; the resolver reads it."""

from __future__ import annotations

from dnslib import AAAA, NS, QTYPE, RR, SOA, A

from router.config import ZoneSettings

Labels = tuple[bytes, ...]  # lower-cased labels, left to right, no root label
T_NS, T_SOA = 2, 6


def labels(name: str) -> Labels:
    """``"WWW.Example.test."`` -> ``(b"www", b"example", b"test")``."""
    return tuple(p.encode().lower() for p in name.rstrip(".").split(".") if p)


class Zone:
    """Static data of one zone, keyed by lower-cased label tuples: ``static`` maps an
    owner name to its records by type, ``glue`` holds in-zone name server addresses,
    ``services`` the names answered with edges, ``names`` every name that exists."""

    def __init__(self, z: ZoneSettings) -> None:
        self.origin: Labels = labels(z.name)
        soa = z.soa
        soa_rd = SOA(
            soa.mname,
            soa.rname,
            (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum),
        )
        self.soa = RR(z.name, QTYPE.SOA, rdata=soa_rd, ttl=soa.ttl)
        # RFC 2308 3: the SOA in a negative answer carries min(SOA TTL, MINIMUM).
        self.negative_soa = RR(z.name, QTYPE.SOA, rdata=soa_rd, ttl=min(soa.ttl, soa.minimum))
        self.static: dict[Labels, dict[int, list[RR]]] = {}
        self.glue: list[RR] = []
        self._add(z.name, T_SOA, self.soa)
        for ns in z.nameservers:
            self._add(z.name, T_NS, RR(z.name, QTYPE.NS, rdata=NS(ns.name), ttl=z.ns_ttl))
            inside = labels(ns.name)[-len(self.origin) :] == self.origin
            for addr in ns.addresses:
                rr = (
                    RR(ns.name, QTYPE.AAAA, rdata=AAAA(addr), ttl=z.ns_ttl)
                    if ":" in addr
                    else RR(ns.name, QTYPE.A, rdata=A(addr), ttl=z.ns_ttl)
                )
                if inside:
                    self._add(ns.name, rr.rtype, rr)
                    self.glue.append(rr)
        self.services: set[Labels] = {labels(s) for s in z.services}
        # Parents of wildcard services (``*.blog.example.test`` -> blog.example.test):
        # every name below one is answered with edges (RFC 4592 4.1 synthesis).
        self.wildcards: set[Labels] = set()
        self._index()

    def _index(self) -> None:
        # Every owner name and its ancestors down to the origin: an ancestor without
        # records of its own is an empty non-terminal (NODATA, not NXDOMAIN; RFC 8020).
        self.names: set[Labels] = set()
        for name in [*self.static, *self.services, *self.wildcards]:
            for i in range(len(name) - len(self.origin) + 1):
                self.names.add(name[i:])

    def add_services(self, names: list[str]) -> None:
        """Answer ``names`` (exact, or ``*.parent`` wildcards) with edges too: the domains
        of the control plane's active services (issue 20)."""
        for name in names:
            if name.startswith("*."):
                self.wildcards.add(labels(name[2:]))
            else:
                self.services.add(labels(name))
        self._index()

    def is_service(self, qname: Labels) -> bool:
        """Whether ``qname`` is answered with edges: a service name, or a name strictly
        below a wildcard's parent."""
        if qname in self.services:
            return True
        return any(qname[i:] in self.wildcards for i in range(1, len(qname)))

    def exists(self, qname: Labels) -> bool:
        """Whether ``qname`` exists in the zone (else NXDOMAIN, RFC 1034 4.3.2)."""
        return qname in self.names or (bool(self.wildcards) and self.is_service(qname))

    def _add(self, name: str, rtype: int, rr: RR) -> None:
        self.static.setdefault(labels(name), {}).setdefault(rtype, []).append(rr)
