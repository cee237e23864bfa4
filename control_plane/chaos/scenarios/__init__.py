"""The chaos scenarios. Each injects one fault into a running :class:`ChaosStack`, drives
bounded load through it, and records numbers and named checks on a :class:`Run`.

Every scenario starts from a healed stack (all processes up, proxies passing) and uses
paths of its own (``/<scenario>/...``, written into the origin's content directory), so
origin fetch counts of one scenario are not disturbed by another.
"""

from __future__ import annotations

from control_plane.chaos.scenarios import (
    control,
    edge,
    hotkey,
    mid,
    origin,
    services,
    supervised,
)
from control_plane.chaos.scenarios.base import SCENARIOS, Run, Scenario

# The modules register their scenarios when imported; list them by fault family, origin
# first, and in each module in the order written.
_FAMILIES = [m.__name__ for m in (origin, mid, edge, control, hotkey, supervised, services)]
_ordered = sorted(SCENARIOS.values(), key=lambda s: _FAMILIES.index(s.fn.__module__))
SCENARIOS.clear()
SCENARIOS.update((s.name, s) for s in _ordered)

__all__ = ["SCENARIOS", "Run", "Scenario"]
