"""When ``cdnctl up`` restarts a child that exited: the restart policy, pure (no
processes, no clock of its own: callers pass ``now``, monotonic seconds).

Modelled on systemd's ``Restart=`` with a growing ``RestartSec``: a child that exits
while the stack is running is started again after ``initial`` seconds, doubling with each
exit up to ``maximum``; a child that stayed up ``stable_after`` seconds starts the count
again. A child that exits ``max_failed_starts`` times in a row before it ever answered
its health check is left down (``StartLimitBurst``): it will not start by itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Delays in seconds; see the module docstring."""

    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 60.0
    max_failed_starts: int = 5


@dataclass
class ChildRecord:
    """One child's history: ``restarts`` done, ``exits`` since its last stable run (the
    backoff exponent), ``failed_starts`` in a row, when it last started, whether it has
    answered its health check since, when it is due to start again (``restart_at``), and
    ``given_up`` once left down."""

    restarts: int = 0
    exits: int = 0
    failed_starts: int = 0
    started_at: float = 0.0
    healthy: bool = False
    restart_at: float | None = None
    given_up: bool = False
    last_status: int | None = None

    def state(self) -> str:
        """``running``, ``starting``, ``restarting`` (waiting out its delay) or ``down``."""
        if self.given_up:
            return "down"
        if self.restart_at is not None:
            return "restarting"
        return "running" if self.healthy else "starting"


def started(rec: ChildRecord, now: float) -> None:
    """The child was (re)started at ``now``."""
    rec.started_at = now
    rec.healthy = False
    rec.restart_at = None


def became_healthy(rec: ChildRecord) -> None:
    """The child answered its health check."""
    rec.healthy = True
    rec.failed_starts = 0


def exited(rec: ChildRecord, status: int, now: float, policy: RestartPolicy) -> float | None:
    """The child exited with ``status`` at ``now``: returns the delay (seconds) before it
    is started again, or ``None`` when it is left down (``max_failed_starts`` exits in a
    row before it was ever healthy)."""
    rec.last_status = status
    if rec.healthy and now - rec.started_at >= policy.stable_after:
        rec.exits = 0
    if rec.healthy:
        rec.failed_starts = 0
    else:
        rec.failed_starts += 1
    rec.healthy = False
    if rec.failed_starts >= policy.max_failed_starts:
        rec.given_up = True
        rec.restart_at = None
        return None
    delay = min(policy.maximum, policy.initial * 2**rec.exits)
    rec.exits += 1
    rec.restart_at = now + delay
    return delay
