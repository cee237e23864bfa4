"""``cdnctl status [--json]``: every node's health and cache counters (exit 1 when any
node is unhealthy)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from control_plane.cli.common import bind, call, cell, human_bytes, table


def cmd_status(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/status")
    nodes = data["nodes"]
    if args.json:
        print(json.dumps(data, indent=2))
        return 0 if all(n["healthy"] for n in nodes) else 1
    if not nodes:
        print("no nodes registered")
        return 0
    rows = [
        [
            "NAME", "TIER", "ADDRESS", "HEALTHY", "RESTARTS", "ENTRIES", "BYTES", "HITS",
            "MISSES", "REQUESTS",
        ]
    ]
    for n in nodes:
        status: dict[str, Any] = n.get("status") or {}
        cache = status.get("cache")
        if not isinstance(cache, dict):
            cache = {}
        rows.append(
            [
                n["name"],
                n["tier"],
                f"{n['host']}:{n['port']}",
                "yes" if n["healthy"] else "NO",
                cell(status.get("restarts")),
                cell(cache.get("entries")),
                human_bytes(cache.get("bytes")) if "bytes" in cache else "-",
                cell(cache.get("hits")),
                cell(cache.get("misses")),
                cell(status.get("requests")),
            ]
        )
    print(table(rows))
    restarts = (data.get("control_plane") or {}).get("restarts")
    if restarts:
        print(f"control plane: restarted {restarts} times by cdnctl up")
    for n in nodes:
        if n.get("error"):
            print(f"{n['name']}: {n['error']}")
    return 0 if all(n["healthy"] for n in nodes) else 1


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser(
        "status", help="health and cache counters of every node", parents=[common]
    )
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    bind(p, cmd_status)
