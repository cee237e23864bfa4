"""Aggregate py-spy ``--format raw`` (collapsed stacks: ``frame;frame;... count``) into
self and inclusive sample shares per function.

    python -m bench.perf.collapsed profile.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "func (path/to/file.py:123)" -> "func (file.py)"; the line number is dropped so one
# function aggregates over all its lines.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def short(frame: str, *, line: bool = False) -> str:
    """``func (path:line)`` -> ``func (pkg/file.py)`` (``:line`` kept when ``line``)."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    lineno = frame.strip().rpartition(":")[2].rstrip(")") if line else ""
    parts = path.split("/")
    for anchor in ("cdn_core", "site-packages", "asyncio", "edge"):
        if anchor in parts:
            path = "/".join(parts[parts.index(anchor) + (anchor == "site-packages") :])
            break
    else:
        path = parts[-1]
    return f"{m.group('func')} ({path}{':' + lineno if lineno.isdigit() else ''})"


def aggregate(text: str) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """(total samples, self counts, inclusive counts, self counts by line)."""
    total = 0
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for raw in text.splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [
            f
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        self_c[short(frames[-1])] += n
        lines[short(frames[-1], line=True)] += n
        for f in {short(f) for f in frames}:
            incl[f] += n
    return total, self_c, incl, lines


def table(counter: Counter[str], total: int, top: int) -> str:
    rows = ["| % of samples | function (file) |", "|---:|---|"]
    for name, n in counter.most_common(top):
        rows.append(f"| {100 * n / total:.1f} | `{name}` |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    total, self_c, incl, lines = aggregate(Path(a.file).read_text())
    print(f"{total} samples\n\n## self\n\n{table(self_c, total, a.top)}")
    print(f"\n## inclusive\n\n{table(incl, total, a.top)}")
    print(f"\n## self by line\n\n{table(lines, total, a.top)}")


if __name__ == "__main__":
    main()
