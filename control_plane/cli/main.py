"""``cdnctl``: the operator CLI. ``up`` starts the one-host stack; the other commands talk to
the control plane's REST API (``--api``, default ``$CDN_API`` or http://127.0.0.1:9000)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cdn_core.version import package_version
from control_plane import chaos, doctor, launcher, top
from control_plane.cli import (
    cluster,
    failover,
    keys,
    nodes,
    prewarm,
    purge,
    ratelimit,
    services,
    signing,
    status,
)
from control_plane.cli.common import key_parent

# The REST API's command groups, in the order ``cdnctl --help`` lists them.
API_GROUPS = (status, purge, services, nodes, keys, prewarm, ratelimit, failover, signing,
              cluster)


def register_api(subparsers: Any) -> None:
    """Add every REST API command group to ``subparsers`` (each takes ``--key``)."""
    common = key_parent()
    for group in API_GROUPS:
        group.register(subparsers, common)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdnctl", description=__doc__)
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s (tiered-cdn) {package_version()}")
    parser.add_argument(
        "--api",
        default=os.environ.get("CDN_API", "http://127.0.0.1:9000"),
        help="control plane base URL, or several replicas as URL1,URL2 (default $CDN_API or"
        " http://127.0.0.1:9000)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    launcher.register(sub)
    doctor.register(sub)
    register_api(sub)
    chaos.register(sub)
    top.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (cdnctl ... | head): stop quietly, as other CLIs do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
