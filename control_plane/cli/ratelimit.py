"""``cdnctl ratelimit list [--json] | add NAME --limit N --window S
[--by client|api_key|host|path_prefix] [--host H] [--service S] [--path-prefix P] [--header NAME]
[--shadow] [--cluster] | update NAME [same options] | remove NAME``: the edges'
rate-limit policies."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from control_plane.cli.common import CliError, bind, call, dump, table

KINDS = ("client", "api_key", "host", "path_prefix")


def _policies(args: argparse.Namespace) -> list[dict[str, Any]]:
    _, data = call(args, "GET", "/v1/ratelimits")
    return list(data["policies"])


def _by_name(args: argparse.Namespace, name: str) -> dict[str, Any]:
    for policy in _policies(args):
        if policy["name"] == name:
            return policy
    raise CliError(f"no rate-limit policy named {name!r}")


def _match(p: dict[str, Any]) -> str:
    where = (p["host"] or "*") + p["path_prefix"]
    return f"{where} (service {p['service']})" if p.get("service") else where


def cmd_ratelimit_list(args: argparse.Namespace) -> int:
    if args.json:
        dump(call(args, "GET", "/v1/ratelimits")[1])
        return 0
    policies = _policies(args)
    if not policies:
        print("no rate-limit policies")
        return 0
    rows = [["NAME", "KEY", "MATCH", "LIMIT", "MODE", "COUNTERS"]]
    for p in policies:
        match = _match(p)
        rows.append(
            [p["name"], p["key"], match, f"{p['limit']}/{p['window']}s", p["mode"], p["counters"]]
        )
    print(table(rows))
    return 0


_FIELDS = {
    "by": "key",
    "host": "host",
    "service": "service",
    "path_prefix": "path_prefix",
    "header": "api_key_header",
    "limit": "limit",
    "window": "window",
}


def _policy_fields(args: argparse.Namespace) -> dict[str, Any]:
    out = {field: getattr(args, arg) for arg, field in _FIELDS.items()}
    out = {k: v for k, v in out.items() if v is not None}
    if isinstance(out.get("window"), float) and out["window"].is_integer():
        out["window"] = int(out["window"])
    if args.mode is not None:
        out["mode"] = args.mode
    if args.counters is not None:
        out["counters"] = args.counters
    return out


def _print_policy(verb: str, p: dict[str, Any]) -> None:
    match = _match(p)
    print(
        f"policy {p['name']} {verb}: {p['limit']} requests per {p['window']} s by {p['key']}"
        f" on {match} ({p['mode']}, {p['counters']} counters)"
    )


def cmd_ratelimit_add(args: argparse.Namespace) -> int:
    if args.limit is None or args.window is None:
        raise CliError("ratelimit add needs --limit and --window")
    body = {"name": args.name, **_policy_fields(args)}
    _, policy = call(args, "POST", "/v1/ratelimits", body)
    _print_policy("added", policy)
    return 0


def cmd_ratelimit_update(args: argparse.Namespace) -> int:
    current = _by_name(args, args.name)
    keep = ("name", "key", "host", "service", "path_prefix", "api_key_header", "limit",
            "window", "mode")
    body = {k: current[k] for k in (*keep, "counters") if k in current}
    body.update(_policy_fields(args))
    _, policy = call(args, "PUT", "/v1/ratelimits/" + quote(current["id"], safe=""), body)
    _print_policy("updated", policy)
    return 0


def cmd_ratelimit_remove(args: argparse.Namespace) -> int:
    current = _by_name(args, args.name)
    call(args, "DELETE", "/v1/ratelimits/" + quote(current["id"], safe=""))
    print(f"policy {args.name} removed")
    return 0


def _policy_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("name")
    q.add_argument("--limit", type=int, help="requests per window (the bucket size)")
    q.add_argument("--window", type=float, help="seconds")
    q.add_argument("--by", choices=KINDS, help="what gets its own bucket (default client)")
    q.add_argument("--host", help="only this host (default any)")
    q.add_argument("--service", help="only requests to this service (any of its hosts)")
    q.add_argument("--path-prefix", help="only paths starting with this (default /)")
    q.add_argument("--header", help="request field holding the API key (key api_key)")
    q.add_argument("--shadow", dest="mode", action="store_const", const="shadow")
    q.add_argument("--enforce", dest="mode", action="store_const", const="enforce")
    q.add_argument("--cluster", dest="counters", action="store_const", const="cluster")
    q.add_argument("--per-edge", dest="counters", action="store_const", const="edge")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser("ratelimit", help="edge rate-limit policies")
    sub = p.add_subparsers(dest="ratelimit_command", required=True, metavar="ACTION")
    q = sub.add_parser("list", help="list policies", parents=[common])
    q.add_argument("--json", action="store_true")
    bind(q, cmd_ratelimit_list)
    for action, func in (("add", cmd_ratelimit_add), ("update", cmd_ratelimit_update)):
        q = sub.add_parser(action, help=f"{action} a policy", parents=[common])
        _policy_options(q)
        q.set_defaults(mode=None, counters=None)
        bind(q, func)
    q = sub.add_parser("remove", help="remove a policy", parents=[common])
    q.add_argument("name")
    bind(q, cmd_ratelimit_remove)
