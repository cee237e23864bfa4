"""``cdnctl top``: a live terminal view of the network (the status page's numbers).

Every second it reads ``GET /v1/stats/history`` (only the samples it has not seen),
``GET /v1/purges?limit=5`` and ``GET /v1/origins``, and redraws with ``rich``: per tier
the healthy nodes, requests per second, hit ratio and a sparkline of the last hour's
traffic; every node; the recent purges with their completion times; the failover state.
``q`` (or Ctrl-C) quits. ``--once`` prints one frame and exits (0, or 1 with one line on
stderr when the control plane cannot be read), for scripts and tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from control_plane.cli.common import CliError, call, human_bytes, key_parent

TIERS = ("edge", "mid", "origin", "router")
SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40


class View:
    """What ``top`` shows; :meth:`refresh` polls the API, :meth:`render` draws."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.points: list[dict[str, Any]] = []
        self.window = 3600.0
        self.history: dict[str, Any] = {}
        self.purges: list[dict[str, Any]] = []
        self.origins: dict[str, Any] = {}
        self.error: str | None = None

    def refresh(self) -> None:
        """Read the API.

        Raises:
            CliError: the control plane could not be read.
        """
        last = self.points[-1]["t"] if self.points else None
        query = "" if last is None else f"?since={last}"
        _, hist = call(self.args, "GET", "/v1/stats/history" + query)
        _, purges = call(self.args, "GET", "/v1/purges?limit=5")
        _, origins = call(self.args, "GET", "/v1/origins")
        self.history, self.purges, self.origins = hist, purges["purges"], origins
        self.window = float(hist.get("window") or self.window)
        self.points.extend(p for p in hist["points"] if last is None or p["t"] > last)
        if self.points:
            cutoff = self.points[-1]["t"] - self.window
            self.points = [p for p in self.points if p["t"] >= cutoff]
        self.error = None

    def render(self) -> RenderableType:
        sampled = self.history.get("sampled_at")
        when = datetime.fromtimestamp(sampled).strftime("%H:%M:%S") if sampled else "-"
        title = Text.assemble(
            ("cdnctl top", "bold"),
            f"  {self.args.api}  sampled {when} (every {self.history.get('interval', '?')} s)",
            "  q quits",
        )
        parts: list[RenderableType] = [title]
        if self.error:
            parts.append(Text(self.error, style="bold red"))
        parts += [self._tiers(), self._nodes(), self._purges(), self._failover()]
        return Group(*parts)

    def _tiers(self) -> Table:
        t = Table(title="Tiers", title_justify="left", expand=False)
        for col in ("tier", "healthy", "req/s", "hit ratio"):
            t.add_column(col, justify="left" if col == "tier" else "right")
        t.add_column("traffic, last hour")
        latest = self.points[-1]["tiers"] if self.points else {}
        for tier in TIERS:
            agg = latest.get(tier)
            if agg is None:
                continue
            up, total = agg.get("healthy", 0), agg.get("nodes", 0)
            t.add_row(
                tier,
                Text(f"{up}/{total}", style="green" if up == total else "bold red"),
                _num(agg.get("rps")),
                _pct(agg.get("hit_ratio")),
                spark([(p["tiers"].get(tier) or {}).get("rps") for p in self.points]),
            )
        return t

    def _nodes(self) -> Table:
        t = Table(title="Nodes", title_justify="left")
        for col in ("name", "tier", "address", "health", "req/s", "hit ratio", "objects", "cache"):
            right = col in ("req/s", "hit ratio", "objects")
            t.add_column(col, justify="right" if right else "left")
        for n in self.history.get("nodes") or []:
            healthy = bool(n.get("healthy"))
            t.add_row(
                str(n.get("name")),
                str(n.get("tier")),
                f"{n.get('host')}:{n.get('port')}",
                Text("up" if healthy else "DOWN", style="green" if healthy else "bold red"),
                _num(n.get("rps")),
                _pct(n.get("hit_ratio")),
                "-" if n.get("cache_entries") is None else str(n["cache_entries"]),
                human_bytes(n.get("cache_bytes")),
            )
        return t

    def _purges(self) -> Table:
        t = Table(title="Recent purges", title_justify="left")
        for col in ("seq", "target", "state", "completed", "acks"):
            t.add_column(col, justify="right" if col in ("seq", "acks") else "left")
        for p in self.purges:
            acks = list((p.get("nodes") or {}).values())
            acked = sum(1 for a in acks if a.get("state") == "acked")
            target = p["type"] if p.get("value") is None else f"{p['type']} {p['value']}"
            style = {"complete": "green", "pending": "yellow"}.get(p.get("state", ""), "red")
            t.add_row(
                str(p.get("seq")),
                target + (" (soft)" if p.get("soft") else ""),
                Text(str(p.get("state")), style=style),
                str(p.get("completed_at") or "-"),
                f"{acked}/{len(acks)}",
            )
        return t

    def _failover(self) -> Text:
        f = self.origins.get("failover") or {}
        origins = self.origins.get("origins") or []
        health = ", ".join(
            f"{o.get('name')} {'up' if o.get('healthy') else 'DOWN'}" for o in origins
        )
        if f.get("forced"):
            return Text(
                f"failover FORCED since {f.get('since')}: {f.get('reason') or ''}  origins: "
                f"{health or '-'}",
                style="bold yellow",
            )
        return Text(f"failover off  origins: {health or '-'}")


def spark(values: list[float | None], width: int = SPARK_WIDTH) -> str:
    """A sparkline of the last ``width`` values (blank where there is no value)."""
    tail = values[-width:]
    top = max((v for v in tail if v is not None), default=0.0)
    out = []
    for v in tail:
        if v is None:
            out.append(" ")
        else:
            level = 0 if top <= 0 else round(v / top * (len(SPARKS) - 1))
            out.append(SPARKS[level])
    return "".join(out)


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):.1f}"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{float(v) * 100:.1f}%"


@contextlib.contextmanager
def _keys() -> Iterator[Any]:
    """Yield a function returning the keys typed so far (stdin in cbreak mode while it
    is a terminal; never any key otherwise)."""
    if not sys.stdin.isatty():
        yield lambda: ""
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed() -> str:
        ready, _, _ = select.select([fd], [], [], 0)
        return os.read(fd, 32).decode(errors="ignore") if ready else ""

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def cmd_top(args: argparse.Namespace) -> int:
    view = View(args)
    console = Console()
    if args.once:
        try:
            view.refresh()
        except CliError as exc:
            print(f"cdnctl: {exc}", file=sys.stderr)
            return 1
        console.print(view.render())
        return 0
    try:
        with _keys() as pressed, Live(console=console, auto_refresh=False) as live:
            while True:
                try:
                    view.refresh()
                except CliError as exc:
                    view.error = str(exc)
                live.update(view.render(), refresh=True)
                deadline = time.monotonic() + args.interval
                while time.monotonic() < deadline:
                    if "q" in pressed().lower():
                        return 0
                    time.sleep(0.05)
    except KeyboardInterrupt:
        return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "top", help="live view of nodes, rates, purges and failover", parents=[key_parent()]
    )
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    p.set_defaults(func=cmd_top)
