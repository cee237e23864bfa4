"""``cdnctl nodes list [--tier T] [--json] | add NAME --tier T --host H --port P
--admin-url U | remove NAME``: the control plane's node registry."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote, urlencode

from control_plane.cli.common import TIERS, bind, call, cell, table


def cmd_nodes_list(args: argparse.Namespace) -> int:
    query = "?" + urlencode({"tier": args.tier}) if args.tier else ""
    _, data = call(args, "GET", "/v1/nodes" + query)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    if not data["nodes"]:
        print("no nodes registered")
        return 0
    rows = [["NAME", "TIER", "ADDRESS", "ADMIN URL", "REGISTERED", "ALIVE", "PURGE SEQ"]]
    for n in data["nodes"]:
        address = f"{n['host']}:{n['port']}"
        alive = {True: "yes", False: "NO", None: "-"}[n.get("alive")]
        rows.append(
            [
                n["name"],
                n["tier"],
                address,
                n["admin_url"],
                n["registered_at"],
                alive,
                cell(n.get("purge_seq")),
            ]
        )
    print(table(rows))
    return 0


def cmd_nodes_add(args: argparse.Namespace) -> int:
    body = {"tier": args.tier, "host": args.host, "port": args.port, "admin_url": args.admin_url}
    _, n = call(args, "PUT", "/v1/nodes/" + quote(args.name, safe=""), body)
    address = f"{n['host']}:{n['port']}"
    print(f"node {n['name']} registered: {n['tier']} at {address}, admin {n['admin_url']}")
    return 0


def cmd_nodes_remove(args: argparse.Namespace) -> int:
    call(args, "DELETE", "/v1/nodes/" + quote(args.name, safe=""))
    print(f"node {args.name} removed")
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser("nodes", help="the node registry (list, add, remove)")
    sub = p.add_subparsers(dest="nodes_command", required=True, metavar="ACTION")
    q = sub.add_parser("list", help="list registered nodes", parents=[common])
    q.add_argument("--tier", choices=TIERS)
    q.add_argument("--json", action="store_true", help="print the API's JSON")
    bind(q, cmd_nodes_list)
    q = sub.add_parser("add", help="register (or update) a node", parents=[common])
    q.add_argument("name")
    q.add_argument("--tier", choices=TIERS, required=True)
    q.add_argument("--host", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--admin-url", required=True, help="e.g. http://127.0.1.1:9080")
    bind(q, cmd_nodes_add)
    q = sub.add_parser("remove", help="remove a node from the registry", parents=[common])
    q.add_argument("name")
    bind(q, cmd_nodes_remove)
