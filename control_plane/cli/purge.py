"""``cdnctl purge VALUE [VALUE...] [--prefix|--host|--tag|--service|--all] [--soft] [--json]
[--wait [--timeout S]]``: one purge per value (URLs by default); prints the purge id,
each node's ack in fan-out order and the completion time. With ``--wait`` it shows a
progress bar until every node acknowledged (the control plane keeps retrying nodes that
failed), or ``--timeout`` seconds pass. Exit 0 when every node acked every purge, else 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from urllib.parse import quote

from control_plane.cli.common import bind, call, table


def _print_purge(p: dict[str, Any]) -> None:
    target = p["type"] if p["value"] is None else f"{p['type']} {p['value']}"
    print(f"purge {p['id']} (seq {p['seq']}) {target}{' soft' if p['soft'] else ''}")
    rows = []
    for name, ack in p["nodes"].items():
        detail = f"purged {ack['purged']}" if ack["state"] == "acked" else ack.get("error") or ""
        rows.append(["  " + name, ack["tier"], ack["state"], detail])
    if rows:
        print(table(rows))
    else:
        print("  no mid-tier or edge nodes registered")
    acked = sum(1 for a in p["nodes"].values() if a["state"] == "acked")
    total = len(p["nodes"])
    if p["completed_at"]:
        print(f"completed {p['completed_at']} ({acked}/{total} nodes acked)")
    else:
        print(
            f"not complete: {acked}/{total} nodes acked (state {p['state']});"
            " the control plane keeps retrying the rest"
        )


def _progress(p: dict[str, Any], elapsed: float) -> str:
    total = len(p["nodes"])
    acked = sum(1 for a in p["nodes"].values() if a["state"] == "acked")
    width = 30
    filled = width if total == 0 else width * acked // total
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {acked}/{total} nodes acked {elapsed:.1f}s"


def _wait_purge(args: argparse.Namespace, purge: dict[str, Any]) -> dict[str, Any]:
    """Poll the purge until it is complete or ``--timeout`` passes, drawing a progress
    bar on stderr (when it is a terminal, or always with ``--progress``)."""
    started = time.monotonic()
    show = not args.json and (sys.stderr.isatty() or args.progress)
    while True:
        elapsed = time.monotonic() - started
        if show:
            print(_progress(purge, elapsed), end="", file=sys.stderr, flush=True)
        if purge["completed_at"] or elapsed >= args.timeout:
            break
        time.sleep(0.05 if elapsed < 1 else 0.25)
        _, purge = call(args, "GET", "/v1/purges/" + quote(purge["id"], safe=""))
    if show:
        print(file=sys.stderr)
    return purge


def cmd_purge(args: argparse.Namespace) -> int:
    kind = args.kind
    if kind == "all":
        if args.values:
            print("cdnctl purge: --all takes no URL or value", file=sys.stderr)
            return 2
        values: list[str | None] = [None]
    elif not args.values:
        print(
            f"cdnctl purge: give at least one {'URL' if kind == 'url' else kind}", file=sys.stderr
        )
        return 2
    else:
        values = list(args.values)
    results = []
    for value in values:
        body: dict[str, Any] = {"type": kind, "soft": args.soft, "wait": not args.wait}
        if value is not None:
            body["value"] = value
        _, purge = call(args, "POST", "/v1/purges", body)
        if args.wait:
            purge = _wait_purge(args, purge)
        results.append(purge)
        if not args.json:
            _print_purge(purge)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    return 0 if all(p["completed_at"] for p in results) else 1


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser(
        "purge",
        parents=[common],
        help="purge URLs (or a prefix, host, tag, or everything) from every cache",
        description="Purge from every mid-tier and edge node; exit 0 when all acked.",
    )
    p.add_argument("values", nargs="*", metavar="URL", help="URL (or prefix, host, tag)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--prefix",
        dest="kind",
        action="store_const",
        const="prefix",
        help="purge every URL starting with each value",
    )
    kind.add_argument(
        "--host",
        dest="kind",
        action="store_const",
        const="host",
        help="purge everything of each host name",
    )
    kind.add_argument(
        "--tag", dest="kind", action="store_const", const="tag", help="purge by surrogate key"
    )
    kind.add_argument(
        "--service", dest="kind", action="store_const", const="service",
        help="purge every object of the named services",
    )
    kind.add_argument(
        "--all", dest="kind", action="store_const", const="all", help="purge everything"
    )
    p.set_defaults(kind="url")
    p.add_argument("--soft", action="store_true", help="mark stale instead of removing")
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    p.add_argument(
        "--wait",
        action="store_true",
        help="show progress until every node acknowledged (retries included)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits (default 60)")
    p.add_argument("--progress", action="store_true", help="draw the bar even when not a tty")
    bind(p, cmd_purge)
