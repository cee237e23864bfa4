"""More ``cdnctl`` commands (registered by :mod:`control_plane.cli_api`):

- ``keys create NAME --role admin|purger|reader | list | revoke ID``
- ``prewarm URL... | --sitemap URL [--tier mid --tier edge]``
- ``ratelimit list | add NAME --limit N --window S [--by client|api_key|host|path_prefix]
  [--host H] [--path-prefix P] [--header NAME] [--shadow] [--cluster] | update NAME
  [same options] | remove NAME``
- ``failover [status] | on [--reason TEXT] | off`` and ``origins``

Each takes ``--json`` (print the API's JSON) where it lists something, and ``--key``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from control_plane.cli_api import CliError, _bind, _cell, _table, call

KINDS = ("client", "api_key", "host", "path_prefix")


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2))


# -- keys -------------------------------------------------------------------------------


def cmd_keys_create(args: argparse.Namespace) -> int:
    _, key = call(args, "POST", "/v1/keys", {"name": args.name, "role": args.role})
    if args.json:
        _dump(key)
        return 0
    print(f"key {key['id']} ({key['role']}) created for {key['name']}:")
    print(key["key"])
    print("store it now: it is not shown again")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/keys")
    if args.json:
        _dump(data)
        return 0
    if not data["keys"]:
        print("no API keys (bootstrap keys are not listed)")
        return 0
    rows = [["ID", "NAME", "ROLE", "CREATED", "REVOKED"]]
    for k in data["keys"]:
        rows.append([k["id"], k["name"], k["role"], k["created_at"], _cell(k["revoked_at"])])
    print(_table(rows))
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    _, key = call(args, "DELETE", "/v1/keys/" + quote(args.id, safe=""))
    print(f"key {key['id']} ({key['name']}) revoked")
    return 0


# -- prewarm ----------------------------------------------------------------------------


def cmd_prewarm(args: argparse.Namespace) -> int:
    if bool(args.urls) == bool(args.sitemap):
        raise CliError("give URLs or --sitemap URL (one of them)")
    body: dict[str, Any] = {"tiers": args.tier or ["mid", "edge"]}
    if args.sitemap:
        body["sitemap"] = args.sitemap
    else:
        body["urls"] = args.urls
    _, report = call(args, "POST", "/v1/prewarm", body)
    if args.json:
        _dump(report)
        return 0 if report["ok"] else 1
    print(f"prewarmed {report['urls']} URLs on tiers {', '.join(report['tiers'])}")
    rows = []
    for name, node in report["nodes"].items():
        detail = f"stored {node['stored']}/{report['urls']}" if node["ok"] else node["error"]
        rows.append(["  " + name, node["tier"], "ok" if node["ok"] else "FAILED", detail])
    print(_table(rows) if rows else "  no nodes of those tiers registered")
    return 0 if report["ok"] else 1


# -- rate limits ------------------------------------------------------------------------


def _policies(args: argparse.Namespace) -> list[dict[str, Any]]:
    _, data = call(args, "GET", "/v1/ratelimits")
    return list(data["policies"])


def _by_name(args: argparse.Namespace, name: str) -> dict[str, Any]:
    for policy in _policies(args):
        if policy["name"] == name:
            return policy
    raise CliError(f"no rate-limit policy named {name!r}")


def cmd_ratelimit_list(args: argparse.Namespace) -> int:
    if args.json:
        _dump(call(args, "GET", "/v1/ratelimits")[1])
        return 0
    policies = _policies(args)
    if not policies:
        print("no rate-limit policies")
        return 0
    rows = [["NAME", "KEY", "MATCH", "LIMIT", "MODE", "COUNTERS"]]
    for p in policies:
        match = (p["host"] or "*") + p["path_prefix"]
        rows.append(
            [p["name"], p["key"], match, f"{p['limit']}/{p['window']}s", p["mode"], p["counters"]]
        )
    print(_table(rows))
    return 0


_FIELDS = {
    "by": "key",
    "host": "host",
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
    match = (p["host"] or "*") + p["path_prefix"]
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
    keep = ("name", "key", "host", "path_prefix", "api_key_header", "limit", "window", "mode")
    body = {k: current[k] for k in (*keep, "counters")}
    body.update(_policy_fields(args))
    _, policy = call(args, "PUT", "/v1/ratelimits/" + quote(current["id"], safe=""), body)
    _print_policy("updated", policy)
    return 0


def cmd_ratelimit_remove(args: argparse.Namespace) -> int:
    current = _by_name(args, args.name)
    call(args, "DELETE", "/v1/ratelimits/" + quote(current["id"], safe=""))
    print(f"policy {args.name} removed")
    return 0


# -- failover and origins ---------------------------------------------------------------


def _print_failover(state: dict[str, Any]) -> None:
    if state["forced"]:
        reason = f": {state['reason']}" if state.get("reason") else ""
        by = "automatically" if state.get("auto") else "by an operator"
        print(f"failover FORCED {by} since {state['since']}{reason} (mid tiers serve from cache)")
    else:
        print("failover not forced (mid tiers go to the origin as usual)")


def cmd_failover(args: argparse.Namespace) -> int:
    if args.action == "status":
        _, data = call(args, "GET", "/v1/origins")
        state = data["failover"]
    else:
        body = {"forced": args.action == "on", "reason": args.reason}
        _, state = call(args, "PUT", "/v1/origins/failover", body)
    if args.json:
        _dump(state)
    else:
        _print_failover(state)
    return 0


def cmd_origins(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/origins")
    if args.json:
        _dump(data)
        return 0
    _print_failover(data["failover"])
    if data["failover"]["forced"]:
        print("(while failover is forced the mid tiers do not ask the origin for what they "
              "hold, so their view below only changes on a cache miss)")
    rows = [["ORIGIN", "ADDRESS", "HEALTHY", "SEEN BY MID TIERS"]]
    for o in data["origins"]:
        rows.append([o["name"], f"{o['host']}:{o['port']}", "yes" if o["healthy"] else "NO", ""])
    for u in data["upstreams"]:
        seen = ", ".join(f"{m}={'up' if v['up'] else 'DOWN'}" for m, v in u["seen_by"].items())
        rows.append([u["url"], "", "yes" if u["up"] else "NO", seen])
    print(_table(rows))
    return 0


# -- parser -----------------------------------------------------------------------------


def _policy_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("name")
    q.add_argument("--limit", type=int, help="requests per window (the bucket size)")
    q.add_argument("--window", type=float, help="seconds")
    q.add_argument("--by", choices=KINDS, help="what gets its own bucket (default client)")
    q.add_argument("--host", help="only this host (default any)")
    q.add_argument("--path-prefix", help="only paths starting with this (default /)")
    q.add_argument("--header", help="request field holding the API key (key api_key)")
    q.add_argument("--shadow", dest="mode", action="store_const", const="shadow")
    q.add_argument("--enforce", dest="mode", action="store_const", const="enforce")
    q.add_argument("--cluster", dest="counters", action="store_const", const="cluster")
    q.add_argument("--per-edge", dest="counters", action="store_const", const="edge")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("keys", help="API keys (create, list, revoke)")
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    q = sub.add_parser("create", help="create a key (shown once)", parents=[common])
    q.add_argument("name")
    q.add_argument("--role", choices=("admin", "purger", "reader"), required=True)
    q.add_argument("--json", action="store_true")
    _bind(q, cmd_keys_create)
    q = sub.add_parser("list", help="list keys", parents=[common])
    q.add_argument("--json", action="store_true")
    _bind(q, cmd_keys_list)
    q = sub.add_parser("revoke", help="revoke a key by id", parents=[common])
    q.add_argument("id")
    _bind(q, cmd_keys_revoke)

    p = subparsers.add_parser(
        "prewarm", help="make mid tiers and edges fetch and store URLs", parents=[common]
    )
    p.add_argument("urls", nargs="*", metavar="URL")
    p.add_argument("--sitemap", metavar="URL", help="prewarm every URL of this sitemap")
    p.add_argument("--tier", action="append", choices=("mid", "edge"), help="(repeatable)")
    p.add_argument("--json", action="store_true")
    _bind(p, cmd_prewarm)

    p = subparsers.add_parser("ratelimit", help="edge rate-limit policies")
    sub = p.add_subparsers(dest="ratelimit_command", required=True, metavar="ACTION")
    q = sub.add_parser("list", help="list policies", parents=[common])
    q.add_argument("--json", action="store_true")
    _bind(q, cmd_ratelimit_list)
    for action, func in (("add", cmd_ratelimit_add), ("update", cmd_ratelimit_update)):
        q = sub.add_parser(action, help=f"{action} a policy", parents=[common])
        _policy_options(q)
        q.set_defaults(mode=None, counters=None)
        _bind(q, func)
    q = sub.add_parser("remove", help="remove a policy", parents=[common])
    q.add_argument("name")
    _bind(q, cmd_ratelimit_remove)

    p = subparsers.add_parser(
        "failover",
        help="force the mid tiers to serve from cache (origin trouble)",
        parents=[common],
    )
    p.add_argument("action", nargs="?", choices=("status", "on", "off"), default="status")
    p.add_argument("--reason", help="why (shown in status)")
    p.add_argument("--json", action="store_true")
    _bind(p, cmd_failover)

    p = subparsers.add_parser("origins", help="origin health and failover state", parents=[common])
    p.add_argument("--json", action="store_true")
    _bind(p, cmd_origins)
