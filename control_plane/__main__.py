"""``python -m control_plane``: run the control plane API.

    python -m control_plane --config configs/control_plane.yaml \\
        --host 127.0.0.1 --port 9000 --db run/control.db \\
        --admin-key-file run/admin.key --control-token-file run/node.token

    python -m control_plane --db postgresql://cdn@db.internal/cdn --port 9000

The database (``--db``, else ``$CDN_DB``, else ``db`` in the config file) is a SQLite path
or a ``sqlite:///`` / ``postgresql://`` URL; its schema is migrated on start.

An admin key may also come from ``$CDN_ADMIN_KEY``; see :mod:`control_plane.auth`.

Flags override the config file. Bad configuration prints one line naming the file and
field and exits 2; so does a port already in use (naming the address). SIGTERM or SIGINT
stops it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from cdn_core.config import load_config
from cdn_core.errors import ConfigError
from cdn_core.service import (
    add_common_args,
    bound_port,
    config_error_exit,
    run_service,
    start_site,
)
from control_plane.api import STORE
from control_plane.app import create_app
from control_plane.config import ENV_PREFIX, ControlPlaneConfig

log = logging.getLogger("cdn.control_plane")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m control_plane", description="CDN control plane (REST API)"
    )
    add_common_args(parser, admin=False)
    parser.add_argument(
        "--db", help="SQLite file or sqlite:///, postgresql://user@host/db URL (else $CDN_DB)")
    parser.add_argument("--admin-key-file", help="file holding a bootstrap admin API key")
    parser.add_argument("--reader-key-file", help="file holding a bootstrap read-only API key")
    parser.add_argument("--control-token", help="node token (prefer --control-token-file)")
    parser.add_argument("--control-token-file", help="file holding the shared node token")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {
        "name": args.name,
        "host": args.host,
        "port": args.port,
        "db": args.db or os.environ.get("CDN_DB") or None,
        "auth": {
            "admin_key_file": args.admin_key_file,
            "reader_key_file": args.reader_key_file,
            "node_token": args.control_token,
            "node_token_file": args.control_token_file,
        },
    }
    try:
        config = load_config(ControlPlaneConfig, args.config, overrides, env_prefix=ENV_PREFIX)
    except ConfigError as exc:
        return config_error_exit(exc)

    async def serve(stop: asyncio.Event) -> None:
        app = create_app(config)
        runner = await start_site(app, config.host, config.port)
        log.info(
            "control plane listening on http://%s:%d (db %s)",
            config.host,
            bound_port(runner),
            app[STORE].display,
        )
        try:
            await stop.wait()
        finally:
            log.info("control plane stopping")
            await runner.cleanup()

    return run_service(serve, log_level=args.log_level)


if __name__ == "__main__":
    sys.exit(main())
