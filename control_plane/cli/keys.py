"""``cdnctl keys create NAME --role admin|purger|reader [--service S ...] [--json] |
list [--json] | revoke ID``: the control plane's API keys (a created key's secret is shown once)."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from control_plane.cli.common import bind, call, cell, dump, table


def cmd_keys_create(args: argparse.Namespace) -> int:
    body = {"name": args.name, "role": args.role}
    if args.service:
        body["services"] = args.service
    _, key = call(args, "POST", "/v1/keys", body)
    if args.json:
        dump(key)
        return 0
    limited = f", services {', '.join(key['services'])} only" if key.get("services") else ""
    print(f"key {key['id']} ({key['role']}{limited}) created for {key['name']}:")
    print(key["key"])
    print("store it now: it is not shown again")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/keys")
    if args.json:
        dump(data)
        return 0
    if not data["keys"]:
        print("no API keys (bootstrap keys are not listed)")
        return 0
    rows = [["ID", "NAME", "ROLE", "SERVICES", "CREATED", "REVOKED"]]
    for k in data["keys"]:
        services = ",".join(k["services"]) if k.get("services") else "all"
        rows.append([k["id"], k["name"], k["role"], services, k["created_at"],
                     cell(k["revoked_at"])])
    print(table(rows))
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    _, key = call(args, "DELETE", "/v1/keys/" + quote(args.id, safe=""))
    print(f"key {key['id']} ({key['name']}) revoked")
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser("keys", help="API keys (create, list, revoke)")
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    q = sub.add_parser("create", help="create a key (shown once)", parents=[common])
    q.add_argument("name")
    q.add_argument("--role", choices=("admin", "purger", "reader"), required=True)
    q.add_argument("--service", action="append", metavar="NAME",
                   help="limit the key to this service (repeat for several)")
    q.add_argument("--json", action="store_true")
    bind(q, cmd_keys_create)
    q = sub.add_parser("list", help="list keys", parents=[common])
    q.add_argument("--json", action="store_true")
    bind(q, cmd_keys_list)
    q = sub.add_parser("revoke", help="revoke a key by id", parents=[common])
    q.add_argument("id")
    bind(q, cmd_keys_revoke)
