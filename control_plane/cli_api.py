"""The ``cdnctl`` commands that talk to the control plane's REST API (``--api`` base URL).

- ``cdnctl status [--json]``: every node's health and cache counters (exit 1 when any
  node is unhealthy).
- ``cdnctl purge VALUE [VALUE...] [--prefix|--host|--tag|--all] [--soft] [--json]
  [--wait [--timeout S]]``: one purge per value (URLs by default); prints the purge id,
  each node's ack in fan-out order and the completion time. With ``--wait`` it shows a
  progress bar until every node acknowledged (the control plane keeps retrying nodes
  that failed), or ``--timeout`` seconds pass. Exit 0 when every node acked every
  purge, else 1.
- ``cdnctl nodes list [--tier T] [--json] | add NAME --tier T --host H --port P
  --admin-url U | remove NAME``.
- ``keys``, ``prewarm``, ``ratelimit``, ``failover``, ``origins``: see
  :mod:`control_plane.cli_ops`; ``signing-keys`` and ``sign-url``: see
  :mod:`control_plane.cli_signing`.

Every command takes ``--key``; without it the API key is ``$CDN_API_KEY``, else the
``admin.key`` that ``cdnctl up`` wrote in the state directory (``$CDN_STATE_DIR``, else
``state_dir`` of ``configs/stack.yaml`` under the current directory, else ``run/``).
Errors (the API's ``{"error": ...}``, an unreachable control plane) print one line on
stderr and exit 1. Uses only the standard library's ``urllib``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

# Seconds to wait for the API. A purge answers after its fan-out, which takes at most
# two node timeouts (mid tier, then edges), so allow well beyond the 2 s default.
TIMEOUT = 60.0
TIERS = ("edge", "mid", "origin", "router")


class CliError(Exception):
    """A failure to report as one line (and exit 1)."""


def state_dir() -> Path:
    """Where ``cdnctl up`` keeps its state (see the module docstring)."""
    env = os.environ.get("CDN_STATE_DIR")
    if env:
        return Path(env)
    stack_file = Path("configs/stack.yaml")
    if stack_file.is_file():
        from cdn_core.errors import ConfigError
        from control_plane.stack import load_stack

        try:
            stack, base = load_stack(stack_file)
            return (base / stack.state_dir).resolve()
        except ConfigError:
            pass
    return Path("run")


def api_key(args: argparse.Namespace) -> str | None:
    """``--key``, else ``$CDN_API_KEY``, else the state directory's ``admin.key``."""
    key = getattr(args, "key", None) or os.environ.get("CDN_API_KEY")
    if key:
        return str(key).strip()
    try:
        text = (state_dir() / "admin.key").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None


def call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """:func:`request` with the API base URL and key of the command line."""
    return request(args.api, method, path, body, key=api_key(args))


def request(
    api: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> tuple[int, Any]:
    """Call the API; returns ``(status, parsed JSON or None)`` for 2xx answers.

    Raises:
        CliError: the API answered 4xx/5xx (its ``error`` text) or could not be reached.
    """
    url = api.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    try:
        req = urllib.request.Request(url, data=data, method=method)
    except ValueError as exc:
        raise CliError(f"--api {api!r} is not an http(s) URL: {exc}") from None
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            message = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode(errors="replace").strip()[:200] or exc.reason
        if exc.code == 401 and not key:
            message += " (no key: use --key, $CDN_API_KEY or run cdnctl up)"
        raise CliError(f"control plane answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the control plane at {api}: {reason}") from None


def _run(func: Any, args: argparse.Namespace) -> int:
    try:
        return int(func(args))
    except CliError as exc:
        print(f"cdnctl: {exc}", file=sys.stderr)
        return 1


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _human_bytes(n: Any) -> str:
    if not isinstance(n, int | float):
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


# -- status -----------------------------------------------------------------------------


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
        ["NAME", "TIER", "ADDRESS", "HEALTHY", "ENTRIES", "BYTES", "HITS", "MISSES", "REQUESTS"]
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
                _cell(cache.get("entries")),
                _human_bytes(cache.get("bytes")) if "bytes" in cache else "-",
                _cell(cache.get("hits")),
                _cell(cache.get("misses")),
                _cell(status.get("requests")),
            ]
        )
    print(_table(rows))
    for n in nodes:
        if n.get("error"):
            print(f"{n['name']}: {n['error']}")
    return 0 if all(n["healthy"] for n in nodes) else 1


# -- purge ------------------------------------------------------------------------------


def _print_purge(p: dict[str, Any]) -> None:
    target = p["type"] if p["value"] is None else f"{p['type']} {p['value']}"
    print(f"purge {p['id']} (seq {p['seq']}) {target}{' soft' if p['soft'] else ''}")
    rows = []
    for name, ack in p["nodes"].items():
        detail = f"purged {ack['purged']}" if ack["state"] == "acked" else ack.get("error") or ""
        rows.append(["  " + name, ack["tier"], ack["state"], detail])
    if rows:
        print(_table(rows))
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


# -- nodes ------------------------------------------------------------------------------


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
                _cell(n.get("purge_seq")),
            ]
        )
    print(_table(rows))
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


# -- parser -----------------------------------------------------------------------------


def _bind(parser: argparse.ArgumentParser, func: Any) -> None:
    parser.set_defaults(func=lambda args: _run(func, args))


def key_parent() -> argparse.ArgumentParser:
    """The ``--key`` option every API command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--key",
        metavar="KEY",
        help="API key (default $CDN_API_KEY, else admin.key in the cdnctl up state dir)",
    )
    return common


def register(subparsers: Any) -> None:
    """Add ``status``, ``purge`` and ``nodes`` to cdnctl's subparsers (``args.api`` is the
    control plane's base URL, from the top-level ``--api``)."""
    common = key_parent()
    p = subparsers.add_parser(
        "status", help="health and cache counters of every node", parents=[common]
    )
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    _bind(p, cmd_status)

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
    _bind(p, cmd_purge)

    p = subparsers.add_parser("nodes", help="the node registry (list, add, remove)")
    sub = p.add_subparsers(dest="nodes_command", required=True, metavar="ACTION")
    q = sub.add_parser("list", help="list registered nodes", parents=[common])
    q.add_argument("--tier", choices=TIERS)
    q.add_argument("--json", action="store_true", help="print the API's JSON")
    _bind(q, cmd_nodes_list)
    q = sub.add_parser("add", help="register (or update) a node", parents=[common])
    q.add_argument("name")
    q.add_argument("--tier", choices=TIERS, required=True)
    q.add_argument("--host", required=True)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--admin-url", required=True, help="e.g. http://127.0.1.1:9080")
    _bind(q, cmd_nodes_add)
    q = sub.add_parser("remove", help="remove a node from the registry", parents=[common])
    q.add_argument("name")
    _bind(q, cmd_nodes_remove)

    from control_plane import cli_ops, cli_signing

    cli_ops.register(subparsers, common)
    cli_signing.register(subparsers, common)
