"""The resolver test bench shared by the resolver and selection tests: a Resolver, its
edge table and a ManualClock (:class:`World`), queries built with dnspython."""

from __future__ import annotations

from typing import Any

import dns.edns
import dns.message

from cdn_core.clock import ManualClock
from router.app import static_edges
from router.config import RouterConfig
from router.ecs import encode_ecs
from router.resolver import Resolver
from router.table import EdgeTable

EDGES = [
    {"name": "edge1", "address": "192.0.2.1"},
    {"name": "edge2", "address": "192.0.2.2"},
    {"name": "edge3", "address": "192.0.2.3"},
]


class World:
    """A resolver, its table and a clock, with helpers to ask questions."""

    def __init__(
        self, edges: list[dict[str, Any]] = EDGES, *, first_round: bool = False, **cfg: Any
    ) -> None:
        """``first_round``: start as a router does, before its first round of probes (by
        default that round is over, so tests see the steady state)."""
        self.config = RouterConfig.model_validate({"edges": edges, **cfg})
        self.clock = ManualClock()
        self.table = EdgeTable(
            self.config.health, self.config.load, self.config.latency, static_edges(self.config)
        )
        if not first_round:
            self.table.end_first_round()
        self.resolver = Resolver(self.config)

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def raw(self, wire: bytes, source: str = "198.51.100.7", tcp: bool = False):
        return self.resolver.handle(wire, source, tcp, self.table.snapshot(), self.now)

    def ask(
        self,
        name: str = "www.example.test",
        rdtype: str = "A",
        *,
        source: str = "198.51.100.7",
        tcp: bool = False,
        ecs: str | None = None,
        edns: int | None = None,
        payload: int = 1232,
    ) -> dns.message.Message:
        options = [dns.edns.GenericOption(8, encode_ecs(ecs))] if ecs else None
        if options and edns is None:
            edns = 0
        q = dns.message.make_query(
            name,
            rdtype,
            use_edns=edns if edns is not None else False,
            payload=payload,
            options=options,
        )
        out = self.raw(q.to_wire(), source, tcp)
        assert out.wire is not None
        return dns.message.from_wire(out.wire)

    def addresses(self, **kw: Any) -> list[str]:
        r = self.ask(**kw)
        return [rr.address for rrset in r.answer for rr in rrset]

    def probe(self, name: str, ok: bool = True, rtt_ms: float = 1.0) -> str | None:
        return self.table.record_probe(name, ok, rtt_ms if ok else None, self.now)

    def rtts(self, **rtt: float) -> None:
        for name, ms in rtt.items():
            self.probe(name, True, ms)


def ecs_scope(msg: dns.message.Message) -> int | None:
    for opt in msg.options:
        if opt.otype == 8:
            return opt.to_wire()[3]
    return None
