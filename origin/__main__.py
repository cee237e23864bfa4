"""``python -m origin [--config FILE] [--host H] [--port P] [--admin-port A] [--root DIR]``.

Flags override the config file, which overrides the built-in defaults (equal to
``configs/origin.yaml``). A bad config or a busy port prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from cdn_core.service import add_common_args, bound_port, run_service, start_site
from origin.app import create_app, create_origin_admin_app
from origin.config import load_origin_config

log = logging.getLogger("cdn.origin")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m origin", description="Serve a content directory as the CDN origin."
    )
    add_common_args(parser)
    parser.add_argument(
        "--root",
        help="content directory to serve (default ./examples/site, else the shipped example site)",
    )
    parser.add_argument(
        "--synthetic", action="store_true",
        help="also serve synthetic objects GET /obj/<id>/<size> (trace replay; settings: "
        "synthetic in the config file)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve until SIGTERM/SIGINT; returns the exit status."""
    args = build_parser().parse_args(argv)
    overrides = {
        "name": args.name,
        "host": args.host,
        "port": args.port,
        "admin_host": args.admin_host,
        "admin_port": args.admin_port,
        "root": args.root,
        "synthetic": {} if args.synthetic else None,
    }

    async def serve(stop: asyncio.Event) -> None:
        config = load_origin_config(args.config, overrides)
        app = create_app(config)
        runner = await start_site(app, config.host, config.port)
        try:
            admin_runner = await start_site(
                create_origin_admin_app(app), config.effective_admin_host, config.admin_port
            )
        except BaseException:
            await runner.cleanup()
            raise
        try:
            log.info(
                "%s: serving %s on http://%s:%d (admin http://%s:%d)",
                config.name,
                config.root,
                config.host,
                bound_port(runner),
                config.effective_admin_host,
                bound_port(admin_runner),
            )
            await stop.wait()
            log.info("%s: stopping", config.name)
        finally:
            await runner.cleanup()
            await admin_runner.cleanup()

    return run_service(serve, log_level=args.log_level)


if __name__ == "__main__":
    sys.exit(main())
