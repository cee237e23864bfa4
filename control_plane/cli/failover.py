"""``cdnctl failover [status] | on [--reason TEXT] | off [--service NAME] [--json]``
(force the mid tiers to serve from cache, for every service or one) and ``cdnctl origins
[--json]`` (origin health, failover state, and each mid tier's view of its upstreams)."""

from __future__ import annotations

import argparse
from typing import Any

from control_plane.cli.common import bind, call, dump, table


def _print_failover(state: dict[str, Any]) -> None:
    if state["forced"]:
        reason = f": {state['reason']}" if state.get("reason") else ""
        by = "automatically" if state.get("auto") else "by an operator"
        print(f"failover FORCED {by} since {state['since']}{reason} (mid tiers serve from cache)")
    else:
        print("failover not forced (mid tiers go to the origin as usual)")
    for name, s in sorted((state.get("services") or {}).items()):
        reason = f": {s['reason']}" if s.get("reason") else ""
        print(f"failover FORCED for service {name} since {s['since']}{reason}")


def cmd_failover(args: argparse.Namespace) -> int:
    if args.action == "status":
        _, data = call(args, "GET", "/v1/origins")
        state = data["failover"]
    else:
        body = {"forced": args.action == "on", "reason": args.reason}
        if args.service:
            body["service"] = args.service
        _, state = call(args, "PUT", "/v1/origins/failover", body)
    if args.json:
        dump(state)
    else:
        _print_failover(state)
    return 0


def cmd_origins(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/origins")
    if args.json:
        dump(data)
        return 0
    _print_failover(data["failover"])
    if data["failover"]["forced"]:
        print(
            "(while failover is forced the mid tiers do not ask the origin for what they "
            "hold, so their view below only changes on a cache miss)"
        )
    rows = [["ORIGIN", "ADDRESS", "HEALTHY", "SEEN BY MID TIERS"]]
    for o in data["origins"]:
        rows.append([o["name"], f"{o['host']}:{o['port']}", "yes" if o["healthy"] else "NO", ""])
    for u in data["upstreams"]:
        seen = ", ".join(f"{m}={'up' if v['up'] else 'DOWN'}" for m, v in u["seen_by"].items())
        rows.append([u["url"], "", "yes" if u["up"] else "NO", seen])
    print(table(rows))
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser(
        "failover",
        help="force the mid tiers to serve from cache (origin trouble)",
        parents=[common],
    )
    p.add_argument("action", nargs="?", choices=("status", "on", "off"), default="status")
    p.add_argument("--reason", help="why (shown in status)")
    p.add_argument("--service", help="on/off for this service only (the others unchanged)")
    p.add_argument("--json", action="store_true")
    bind(p, cmd_failover)

    p = subparsers.add_parser("origins", help="origin health and failover state", parents=[common])
    p.add_argument("--json", action="store_true")
    bind(p, cmd_origins)
