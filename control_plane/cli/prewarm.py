"""``cdnctl prewarm URL... | --sitemap URL [--tier mid --tier edge] [--json]``: make mid
tiers and edges fetch and store URLs (exit 1 when a node failed)."""

from __future__ import annotations

import argparse
from typing import Any

from control_plane.cli.common import CliError, bind, call, dump, table


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
        dump(report)
        return 0 if report["ok"] else 1
    print(f"prewarmed {report['urls']} URLs on tiers {', '.join(report['tiers'])}")
    rows = []
    for name, node in report["nodes"].items():
        detail = f"stored {node['stored']}/{report['urls']}" if node["ok"] else node["error"]
        rows.append(["  " + name, node["tier"], "ok" if node["ok"] else "FAILED", detail])
    print(table(rows) if rows else "  no nodes of those tiers registered")
    return 0 if report["ok"] else 1


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser(
        "prewarm", help="make mid tiers and edges fetch and store URLs", parents=[common]
    )
    p.add_argument("urls", nargs="*", metavar="URL")
    p.add_argument("--sitemap", metavar="URL", help="prewarm every URL of this sitemap")
    p.add_argument("--tier", action="append", choices=("mid", "edge"), help="(repeatable)")
    p.add_argument("--json", action="store_true")
    bind(p, cmd_prewarm)
