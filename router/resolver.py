"""The authoritative DNS logic. Pure (sans-IO): :meth:`Resolver.handle` takes the query's
wire bytes, the client's address, the transport, a table snapshot and ``now`` and returns
the answer's wire bytes (or None to drop). No sockets, no asyncio, no logging.

Behaviour, by RFC:

* Authoritative answers (AA, RFC 1034 4.3.2) for our zones; REFUSED for other names
  (RFC 1035 4.1.1: we are not willing to serve them).
* NXDOMAIN and NODATA carry the zone's SOA in the authority section with TTL
  ``min(SOA TTL, SOA MINIMUM)`` (RFC 2308 3, 5). Empty non-terminals are NODATA.
* Service names are answered with edge addresses: A for IPv4 edges, AAAA for IPv6
  (RFC 3596); NODATA when the family has none.
* EDNS0 (RFC 6891): the OPT record is echoed with our payload size; the client's payload
  size is honoured (512 without EDNS, 6.2.5 and RFC 1035 4.2.1); an answer that does not
  fit is sent with TC=1 and no records (the client retries over TCP, RFC 7766); more
  than one OPT is FORMERR (6.1.1); an unknown EDNS version is BADVERS (6.1.3). The DO bit
  is copied (RFC 3225 3).
* EDNS Client Subnet (RFC 7871): the option's prefix replaces the source address as the
  client prefix, and is echoed with SCOPE PREFIX-LENGTH set to the prefix length the
  answer was chosen for (0 when the answer is the same for everyone), 7.2.1.
* Malformed queries: FORMERR when the 12-octet header parses (RFC 1035 4.1.1), otherwise
  dropped; so is a query with other than one question, with answer or authority records,
  with more than 4 additional records or longer than 4096 octets. Opcodes other than
  QUERY get NOTIMP. Responses (QR=1) are dropped so two servers never loop.

Two caches, both cleared whenever the table's generation moves (see ``router.table``):
the answer cache of service-name records per (name, type, client prefix), and in front
of it whole packed replies per (query bytes but the ID, transport, source prefix), so a
repeated query costs a dict lookup and an ID patch instead of a parse and a pack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dnslib import AAAA, QTYPE, RR, A, DNSHeader, DNSLabel, DNSQuestion, DNSRecord
from dnslib.buffer import Buffer

from router.config import RouterConfig
from router.dnswire import (
    BADVERS,
    CLASS_ANY,
    CLASS_IN,
    DROPPED,
    FORMERR,
    MAX_ADDITIONAL,
    MAX_QUERY,
    MEMOISED,
    NOERROR,
    NOTIMP,
    NXDOMAIN,
    PARSE_ERRORS,
    RCODE_NAMES,
    REFUSED,
    T_A,
    T_AAAA,
    T_ANY,
    T_AXFR,
    T_IXFR,
    T_NS,
    T_OPT,
    WIRE_CACHE_MAX_QUERY,
    Outcome,
    bare_reply,
    find_ecs,
    pack_reply,
)
from router.ecs import ClientSubnet, EcsError, PrefixKey, PrefixPolicy
from router.select import Choice, choose
from router.table import TableSnapshot
from router.zone import Labels, Zone, labels


@dataclass(frozen=True, slots=True)
class _Dynamic:
    records: tuple[RR, ...]
    edges: tuple[str, ...]
    reasons: tuple[str, ...]
    client_scoped: bool
    valid_until: float


class Resolver:
    """Answers queries for the configured zones (see the module docstring). Holds only
    static zone data and the answer cache; all edge state comes in the snapshot."""

    def __init__(self, config: RouterConfig) -> None:
        self._cfg = config.answers
        self._latency = config.latency
        self._edns_size = config.edns_udp_size
        self.prefixes = PrefixPolicy(config.latency.ipv4_prefix, config.latency.ipv6_prefix)
        self._zone_settings = list(config.zones)
        self._zones: dict[Labels, Zone] = {}
        for z in config.zones:
            self._zones[labels(z.name)] = Zone(z)
        self._cache: dict[tuple[Labels, int, PrefixKey], _Dynamic] = {}
        self._wire_cache: dict[tuple[bytes, bool, PrefixKey], Outcome] = {}
        self._cache_generation = -1
        self._source_keys: dict[str, PrefixKey] = {}
        self.cache_hits = 0
        self.cache_misses = 0

    # -- entry point ---------------------------------------------------------------------
    def handle(
        self, data: bytes, source: str, tcp: bool, snapshot: TableSnapshot, now: float
    ) -> Outcome:
        """Answer one query. ``source`` is the client's IP address (text), ``tcp`` whether
        it came over TCP (no size limit but 65535), ``now`` monotonic seconds."""
        if len(data) < 12:
            return DROPPED
        if snapshot.generation != self._cache_generation:
            self._cache.clear()
            self._wire_cache.clear()
            self._cache_generation = snapshot.generation
        # Fast path: the same query bytes (but the ID) from the same client prefix get
        # the same answer until the table moves, so the packed reply is reused as is.
        key = None
        if len(data) <= WIRE_CACHE_MAX_QUERY:
            key = (data[2:], tcp, self._prefix(None, source))
            cached = self._wire_cache.get(key)
            if cached is not None and cached.wire is not None and now < cached.valid_until:
                if cached.edges:
                    self.cache_hits += 1
                return Outcome(
                    data[:2] + cached.wire[2:],
                    cached.rcode,
                    cached.edges,
                    cached.reasons,
                    cached.truncated,
                    True,
                    cached.valid_until,
                )
        out = self._handle(data, source, tcp, snapshot, now)
        if key is not None and out.rcode in MEMOISED:
            if len(self._wire_cache) >= self._cfg.cache_entries:
                self._wire_cache.clear()
            self._wire_cache[key] = out
        return out

    def _handle(
        self, data: bytes, source: str, tcp: bool, snapshot: TableSnapshot, now: float
    ) -> Outcome:
        try:
            header = DNSHeader.parse(Buffer(data))
        except PARSE_ERRORS:
            return DROPPED
        if header.qr:
            return DROPPED
        if header.opcode != 0:
            return bare_reply(header, NOTIMP)
        if header.q != 1 or header.a or header.auth or header.ar > MAX_ADDITIONAL:
            # A query has one question and no answer or authority records. Refusing to
            # parse anything else also bounds the work a hostile message can cause
            # (compression-pointer chains cost time per name).
            return bare_reply(header, FORMERR)
        if len(data) > MAX_QUERY:
            return bare_reply(header, FORMERR)
        try:
            query = DNSRecord.parse(data)
        except PARSE_ERRORS:
            return bare_reply(header, FORMERR)
        labels = query.q.qname.label
        if any(len(lab) > 63 for lab in labels) or sum(len(lab) + 1 for lab in labels) > 254:
            # RFC 1035 2.3.4: labels of at most 63 octets, names of at most 255.
            return bare_reply(header, FORMERR)
        return self._answer(header, query, source, tcp, snapshot, now)

    def cache_size(self) -> int:
        """Entries in the answer cache (per name, type and client prefix)."""
        return len(self._cache)

    # -- internals -----------------------------------------------------------------------
    def _answer(
        self,
        header: DNSHeader,
        query: DNSRecord,
        source: str,
        tcp: bool,
        snapshot: TableSnapshot,
        now: float,
    ) -> Outcome:
        opts = [rr for rr in query.ar if rr.rtype == T_OPT]
        opt = opts[0] if opts else None
        question = query.questions[0] if len(query.questions) == 1 else None
        reply = DNSRecord(
            # RFC 1035 4.1.1 copies RD, RFC 4035 3.1.6 copies CD.
            DNSHeader(id=header.id, qr=1, opcode=header.opcode, rd=header.rd, cd=header.cd),
            questions=[question] if question is not None else [],
        )
        ecs: ClientSubnet | None = None
        rcode = NOERROR
        if len(opts) > 1 or question is None:
            rcode = FORMERR
        elif opt is not None and opt.edns_ver != 0:
            rcode = BADVERS
        else:
            try:
                ecs = find_ecs(opt)
            except EcsError:
                rcode = FORMERR
        result: _Dynamic | None = None
        hit = False
        scope = 0
        if rcode == NOERROR and question is not None:
            rcode, result, hit = self._lookup(reply, question, ecs, source, snapshot, now)
            if result is not None and result.client_scoped and ecs is not None and ecs.source:
                scope = self.prefixes.length(ecs.version)
        wire, truncated = pack_reply(
            reply, rcode, opt, ecs, scope, tcp=tcp, edns_size=self._edns_size
        )
        name = RCODE_NAMES.get(rcode, str(rcode))
        if result is None:
            return Outcome(wire, name, truncated=truncated)
        if truncated:  # no address handed out; may still age with the samples behind it
            return Outcome(wire, name, truncated=True, valid_until=result.valid_until)
        return Outcome(wire, name, result.edges, result.reasons, False, hit, result.valid_until)

    def _lookup(
        self,
        reply: DNSRecord,
        question: DNSQuestion,
        ecs: ClientSubnet | None,
        source: str,
        snapshot: TableSnapshot,
        now: float,
    ) -> tuple[int, _Dynamic | None, bool]:
        """Fill ``reply`` for ``question``; returns (rcode, the dynamic answer or None,
        whether that came from the answer cache)."""
        qname: Labels = tuple(label.lower() for label in question.qname.label)
        zone = self._find_zone(qname)
        if zone is None or question.qclass not in (CLASS_IN, CLASS_ANY):
            return REFUSED, None, False
        reply.header.aa = 1
        qtype = question.qtype
        if qtype in (T_AXFR, T_IXFR):
            return REFUSED, None, False  # no zone transfers
        if not zone.exists(qname):
            reply.auth.append(zone.negative_soa)
            return NXDOMAIN, None, False
        result: _Dynamic | None = None
        hit = False
        if zone.is_service(qname):
            result, hit = self._service(question, qname, qtype, ecs, source, snapshot, now)
            reply.rr.extend(result.records)
        for rtype, rrs in zone.static.get(qname, {}).items():
            if qtype in (rtype, T_ANY):
                reply.rr.extend(rrs)
                if rtype == T_NS:
                    reply.ar.extend(zone.glue)  # RFC 1035 3.3.11 additional processing
        if not reply.rr:
            reply.auth.append(zone.negative_soa)  # NODATA, RFC 2308 2.2
        return NOERROR, result, hit

    def set_service_domains(self, domains: list[str]) -> None:
        """Answer the domains of the control plane's active services (issue 20), beside
        the configured services: each goes into the configured zone that contains it, or
        into a zone made for its parent (``shop.example.com`` -> ``example.com``, a
        wildcard's parent itself) with the first configured zone's SOA and NS. Names no
        longer listed get NXDOMAIN again. The caller invalidates cached answers (the edge
        table's generation)."""
        zones = {labels(z.name): Zone(z) for z in self._zone_settings}
        template = self._zone_settings[0]
        for domain in domains:
            name = labels(domain.removeprefix("*."))
            if not name:
                continue
            zone = next((zones[name[i:]] for i in range(len(name)) if name[i:] in zones), None)
            if zone is None:
                apex = name if domain.startswith("*.") or len(name) <= 2 else name[1:]
                text = b".".join(apex).decode()
                zone = zones[apex] = Zone(template.model_copy(
                    update={"name": text, "services": []}))
            zone.add_services([domain])
        self._zones = zones

    def _find_zone(self, qname: Labels) -> Zone | None:
        for i in range(len(qname) + 1):
            zone = self._zones.get(qname[i:])
            if zone is not None:
                return zone
        return None

    def _service(
        self,
        question: DNSQuestion,
        qname: Labels,
        qtype: int,
        ecs: ClientSubnet | None,
        source: str,
        snapshot: TableSnapshot,
        now: float,
    ) -> tuple[_Dynamic, bool]:
        if len(self._cache) >= self._cfg.cache_entries:
            self._cache.clear()
        prefix = self._prefix(ecs, source)
        key = (qname, qtype, prefix)
        hit = self._cache.get(key)
        if hit is not None and now < hit.valid_until:
            self.cache_hits += 1
            return hit, True
        self.cache_misses += 1
        versions = {T_A: (4,), T_AAAA: (6,), T_ANY: (4, 6)}.get(qtype, ())
        ttl = self._cfg.degraded_ttl if snapshot.degraded else self._cfg.ttl
        records: list[RR] = []
        edges: list[str] = []
        reasons: list[str] = []
        scoped = False
        valid_until = math.inf
        for version in versions:
            choice: Choice | None = choose(
                snapshot,
                version,
                prefix,
                now,
                count=self._cfg.per_query,
                tolerance_ms=self._cfg.rtt_tolerance_ms,
                sample_max_age=self._latency.sample_max_age,
                fallback=self._cfg.fallback,
            )
            if choice is None:
                continue
            rtype, rdcls = (QTYPE.A, A) if version == 4 else (QTYPE.AAAA, AAAA)
            # The zone's spelling of the name (lower case), as static records use: the
            # records are cached and shared by every spelling of the question (RFC 4343).
            records.extend(
                RR(DNSLabel(list(qname)), rtype, rdata=rdcls(a), ttl=ttl) for a in choice.addresses
            )
            edges.extend(choice.edges)
            reasons.extend(choice.reasons)
            scoped = scoped or choice.depends_on_client
            valid_until = min(valid_until, choice.valid_until)
        result = _Dynamic(tuple(records), tuple(edges), tuple(reasons), scoped, valid_until)
        self._cache[key] = result
        return result, False

    def _prefix(self, ecs: ClientSubnet | None, source: str) -> PrefixKey:
        if ecs is not None and ecs.source:
            return self.prefixes.key_for_subnet(ecs)
        key = self._source_keys.get(source)
        if key is None:
            try:
                key = self.prefixes.key_for_text(source)
            except ValueError:
                key = (0, 0)  # not an IP (a Unix socket in tests): one shared prefix
            if len(self._source_keys) >= 4096:
                self._source_keys.clear()
            self._source_keys[source] = key
        return key
