"""CPU time and memory of a process and all its descendants, from /proc (adapted from
the team harness's ``py/cputicks.py``).

CPU: utime + stime of every thread of every process in the tree (``/proc/PID/stat``
fields 14 and 15, in clock ticks). Sampled before and after a load run, the difference is
the CPU the server spent on that run, whatever its threads or workers did. A process
that exits between the samples loses its ticks, so servers are kept running for the whole
measurement (none of ours fork per request).
"""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """``root`` and its descendants (one pass over /proc)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f is not None:
                kids.setdefault(int(f[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def cpu_seconds(root: int) -> float:
    """utime + stime of ``root``'s whole tree, seconds."""
    return cpu_seconds_of(tree(root))


def cpu_seconds_of(pids: list[int]) -> float:
    """utime + stime of exactly these processes (no descendants added), seconds."""
    total = 0
    for pid in pids:
        f = _stat_fields(pid)
        if f is not None:
            total += int(f[11]) + int(f[12])
    return total / CLK_TCK


def rss_bytes(root: int) -> int:
    """Sum of VmRSS over ``root``'s tree (shared pages of several processes count once
    per process; the memory test measures one-process servers or differences)."""
    return rss_bytes_of(tree(root))


def rss_bytes_of(pids: list[int]) -> int:
    """Sum of VmRSS of exactly these processes, bytes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total
