"""``cdnctl``: the operator CLI. ``up`` starts the one-host stack; the other commands talk to
the control plane's REST API (``--api``, default ``$CDN_API`` or http://127.0.0.1:9000)."""

from __future__ import annotations

import argparse
import os
import sys

from control_plane import chaos, cli_api, launcher, top


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdnctl", description=__doc__)
    parser.add_argument(
        "--api",
        default=os.environ.get("CDN_API", "http://127.0.0.1:9000"),
        help="control plane base URL (default $CDN_API or http://127.0.0.1:9000)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    launcher.register(sub)
    cli_api.register(sub)
    chaos.register(sub)
    top.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
