"""DNS message shapes the resolver shares with the server around it (RFC 1035, 6891).

RCODEs and RR types as numbers, the size limits of queries and replies, the
:class:`Outcome` of one query, the exceptions dnslib raises on hostile input, and two
pure helpers: a header-only reply (:func:`bare_reply`) and the size limit that packs an
answer (:func:`pack_reply`). No sockets, no state.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from dnslib import EDNS0, DNSError, DNSHeader, DNSRecord, EDNSOption
from dnslib.label import DNSLabelError

from router.ecs import ECS_OPTION_CODE, ClientSubnet, EcsError, parse_ecs

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16  # extended RCODE, RFC 6891 9
RCODE_NAMES = {
    NOERROR: "NOERROR",
    FORMERR: "FORMERR",
    SERVFAIL: "SERVFAIL",
    NXDOMAIN: "NXDOMAIN",
    NOTIMP: "NOTIMP",
    REFUSED: "REFUSED",
    BADVERS: "BADVERS",
}
T_A, T_NS, T_AAAA, T_OPT, T_AXFR, T_IXFR, T_ANY = 1, 2, 28, 41, 252, 251, 255
CLASS_IN, CLASS_ANY = 1, 255
UDP_MIN = 512  # RFC 1035 4.2.1 / RFC 6891 6.2.5
TCP_MAX = 65535
MAX_ADDITIONAL = 4  # OPT, and room for TSIG / SIG(0) we ignore
MAX_QUERY = 4096  # octets; real queries are far smaller
# Replies kept in the wire cache and the UDP reply memo (not garbage's FORMERRs).
MEMOISED = frozenset({"NOERROR", "NXDOMAIN", "REFUSED"})
WIRE_CACHE_MAX_QUERY = 300  # octets; bounds the wire cache's memory (entries x this)
# dnslib raises these on hostile input (deep compression-pointer chains recurse).
PARSE_ERRORS = (
    DNSError,
    DNSLabelError,
    RecursionError,
    ValueError,
    IndexError,
    struct.error,
    UnicodeError,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one query. ``wire`` is the response (None: drop it); ``rcode`` a
    label for metrics ("NOERROR", ..., "DROPPED"); ``edges``/``reasons`` name the edge
    behind each answered address and why it was chosen; ``truncated`` is TC=1;
    ``valid_until`` (monotonic seconds) bounds how long the same query may get it."""

    wire: bytes | None
    rcode: str
    edges: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    truncated: bool = False
    cache_hit: bool = False
    valid_until: float = math.inf


DROPPED = Outcome(None, "DROPPED")


def bare_reply(header: DNSHeader, rcode: int) -> Outcome:
    """A reply of ``header`` alone with ``rcode`` (RFC 1035 4.1.1: ID, opcode, RD copied;
    RFC 4035 3.1.6: CD copied)."""
    reply = DNSHeader(
        id=header.id, qr=1, opcode=header.opcode, rd=header.rd, cd=header.cd, rcode=rcode
    )
    return Outcome(bytes(DNSRecord(reply).pack()), RCODE_NAMES[rcode])


def find_ecs(opt: Any) -> ClientSubnet | None:
    """The ECS option (RFC 7871) of an OPT record, if any. Raises EcsError for a bad or
    repeated one."""
    if opt is None:
        return None
    found = [o for o in opt.rdata if o.code == ECS_OPTION_CODE]
    if not found:
        return None
    if len(found) > 1:
        raise EcsError("more than one ECS option")
    return parse_ecs(bytes(found[0].data))


def pack_reply(
    reply: DNSRecord,
    rcode: int,
    opt: Any,
    ecs: ClientSubnet | None,
    scope: int,
    *,
    tcp: bool,
    edns_size: int,
) -> tuple[bytes, bool]:
    """``(wire, truncated)`` of ``reply`` with ``rcode``: with an OPT echoing our payload
    size ``edns_size`` (octets), the DO bit and the ECS option at ``scope`` when the query
    had one (RFC 6891 6.1, RFC 3225 3, RFC 7871 7.2.1); over the client's size limit
    (512 without EDNS, its payload size with, 65535 over TCP) the records are dropped and
    TC set (RFC 6891 7, RFC 2181 9)."""
    reply.header.rcode = rcode & 0xF
    limit = TCP_MAX if tcp else UDP_MIN
    if opt is not None:
        ecs_opts = [] if ecs is None else [EDNSOption(ECS_OPTION_CODE, ecs.response_option(scope))]
        reply.ar.append(
            EDNS0(
                udp_len=edns_size,
                ext_rcode=rcode >> 4,
                flags="do" if opt.ttl & 0x8000 else "",
                opts=ecs_opts,
            )
        )
        if not tcp:
            limit = max(UDP_MIN, min(opt.edns_len, edns_size))
    wire = bytes(reply.pack())
    if len(wire) <= limit:
        return wire, False
    reply.rr, reply.auth = [], []
    reply.ar = [rr for rr in reply.ar if rr.rtype == T_OPT]
    reply.header.tc = 1
    return bytes(reply.pack()), True
