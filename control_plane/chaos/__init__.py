"""The chaos suite (issue 9): ``cdnctl chaos list`` and ``cdnctl chaos run [SCENARIO...]``
start a stack of their own on loopback (:mod:`.topology`), inject faults with signals and
fault proxies (:mod:`.faultproxy`), drive bounded load (:mod:`.load`) and check numbers
(:mod:`.scenarios`); :mod:`.runner` ties them together.

Only :func:`register` is imported by ``cdnctl``; the rest loads when a chaos command runs.
"""

from control_plane.chaos.runner import register

__all__ = ["register"]
