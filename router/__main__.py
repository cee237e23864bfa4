"""``python -m router --config configs/router.yaml [--host H] [--port P] [--admin-host H]
[--admin-port P] [--edge NAME=ADDRESS:PORT:ADMIN_PORT ...] [--control-plane URL]
[--name N] [--log-level L]``.

Flags override the config file; ``--edge`` (repeatable) replaces the file's edge list.
A bad config or flag, or an address that cannot be bound (UDP or TCP), prints one line
and exits with status 2. SIGTERM/SIGINT stop it cleanly (status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from cdn_core.config import load_config
from cdn_core.service import add_common_args, run_service
from router.app import create_app
from router.config import RouterConfig, parse_edge_flag

ENV_PREFIX = "CDN_ROUTER"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m router",
        description="Authoritative DNS that answers with the best healthy edge.",
    )
    add_common_args(parser)
    parser.add_argument(
        "--edge",
        action="append",
        metavar="NAME=ADDRESS:PORT:ADMIN_PORT",
        help="an edge (repeatable); when given, replaces the config file's edge list",
    )
    parser.add_argument(
        "--control-plane", metavar="URL", help="poll URL/v1/nodes for registered edges"
    )
    return parser


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the flags set (None values are ignored by ``load_config``).

    Raises:
        ConfigError: a malformed ``--edge``.
    """
    out: dict[str, Any] = {
        "name": args.name,
        "host": args.host,
        "port": args.port,
        "admin_host": args.admin_host,
        "admin_port": args.admin_port,
    }
    if args.edge:
        out["edges"] = [parse_edge_flag(e) for e in args.edge]
    if args.control_plane:
        out["control_plane"] = {"url": args.control_plane}
    return out


log = logging.getLogger("cdn.router")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    async def serve(stop: asyncio.Event) -> None:
        # Loaded inside run_service so a ConfigError is reported as one line, exit 2.
        config = load_config(RouterConfig, args.config, overrides(args), env_prefix=ENV_PREFIX)
        app = create_app(config)
        await app.start()
        try:
            await stop.wait()
            log.info("router stopping")
        finally:
            await app.stop()

    return run_service(serve, log_level=args.log_level)


if __name__ == "__main__":
    sys.exit(main())
