"""The leader lease, decided without I/O: which replica holds it after one attempt.

Work that must happen once across control-plane replicas (the origin watch that forces
failover, retries of unacknowledged purges, stats sampling) runs on the replica holding
the lease row ``leader``. A replica renews its own lease every ``interval`` seconds for
``ttl`` seconds; another takes it over only once it has expired, so a leader that dies
is replaced within ``ttl + interval`` seconds. ``term`` counts changes of holder (a
fencing number: logs and ``GET /v1/cluster`` show it). Times are Unix seconds from the
replicas' clocks, which must agree to well under ``ttl`` (NTP does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Change = Literal["create", "renew", "take", "keep"]


@dataclass(frozen=True)
class Lease:
    """One lease row: ``holder`` (a replica id) until ``expires_at``."""

    name: str
    holder: str
    acquired_at: float
    expires_at: float
    term: int

    def held_by(self, holder: str, now: float) -> bool:
        return self.holder == holder and self.expires_at > now

    def to_json(self, now: float) -> dict[str, Any]:
        return {"name": self.name, "holder": self.holder, "acquired_at": self.acquired_at,
                "expires_at": self.expires_at, "term": self.term,
                "expires_in": round(self.expires_at - now, 3)}


def attempt(current: Lease | None, name: str, holder: str, now: float,
            ttl: float) -> tuple[Change, Lease]:
    """What ``holder`` asking for lease ``name`` at ``now`` makes of ``current``:
    ``create`` (no row yet), ``renew`` (its own lease, expired or not, while nobody took
    it), ``take`` (another holder's expired lease: term + 1), or ``keep`` (another
    holder's live lease: unchanged). Returns the change and the lease after it."""
    if current is None:
        return "create", Lease(name, holder, now, now + ttl, 1)
    if current.holder == holder:
        return "renew", Lease(name, holder, current.acquired_at, now + ttl, current.term)
    if current.expires_at <= now:
        return "take", Lease(name, holder, now, now + ttl, current.term + 1)
    return "keep", current
