"""Command line of a caching node: ``python -m edge|mid_tier [--config F] [--port P]
[--upstream URL ...]``; flags override the config file, which overrides defaults."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from cdn_core.config import load_config
from cdn_core.errors import ConfigError
from cdn_core.node.app import Node
from cdn_core.node.settings.node import NodeConfig
from cdn_core.service import add_common_args, config_error_exit, run_service

log = logging.getLogger("cdn.node")


def parse_args(tier: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {'edge' if tier == 'edge' else 'mid_tier'}",
        description=f"Run one {tier} caching node in front of any HTTP upstream.",
    )
    add_common_args(parser)
    parser.add_argument(
        "--upstream",
        action="append",
        metavar="URL",
        help="upstream http://host:port (repeat for several; replaces config)",
    )
    parser.add_argument("--cache-bytes", type=int, help="memory budget for the cache, bytes")
    parser.add_argument(
        "--disk-path",
        metavar="DIR",
        help="directory of this node's on-disk cache tier (one per node)",
    )
    parser.add_argument(
        "--failover-window", type=float, help="seconds stale objects may answer when upstreams fail"
    )
    parser.add_argument(
        "--control-plane", metavar="URL", help="control plane for heartbeats, purge catch-up"
    )
    parser.add_argument("--control-token", help="node token (prefer --control-token-file)")
    parser.add_argument("--control-token-file", help="file holding the control plane's token")
    parser.add_argument("--redis", metavar="URL", help="redis:// URL for cluster rate limits")
    parser.add_argument("--tls-port", type=int, help="HTTPS port (needs --tls-cert/--tls-key)")
    parser.add_argument("--tls-cert", metavar="PEM", help="certificate chain for --tls-port")
    parser.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    parser.add_argument("--upstream-ca", metavar="PEM", help="CA bundle for https upstreams")
    parser.add_argument(
        "--rtt-report-url",
        metavar="URL",
        help="DNS router admin URL to report client RTTs to (edges)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port (SO_REUSEPORT), each with its own store "
        "of cache.max_bytes/N (see cdn_core.node.workers)",
    )
    return parser.parse_args(argv)


def overrides(tier: str, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "tier": tier,
        "name": args.name,
        "host": args.host,
        "port": args.port,
        "admin_host": args.admin_host,
        "admin_port": args.admin_port,
        "upstream": {"urls": args.upstream, "ca_file": args.upstream_ca},
        "cache": {"max_bytes": args.cache_bytes, "disk_path": args.disk_path},
        "failover_window": args.failover_window,
        "control": {
            "url": args.control_plane,
            "token": args.control_token,
            "token_file": args.control_token_file,
        },
        "ratelimit": {"redis_url": args.redis},
        "rtt_report": {"url": args.rtt_report_url},
        "tls": {
            "port": args.tls_port,
            "certificates": [{"cert_file": args.tls_cert, "key_file": args.tls_key}]
            if args.tls_cert
            else None,
        },
    }


def main(tier: str, argv: list[str] | None = None) -> int:
    args = parse_args(tier, argv)
    try:
        config = load_config(
            NodeConfig,
            args.config,
            overrides(tier, args),
            env_prefix=f"CDN_{'EDGE' if tier == 'edge' else 'MID_TIER'}",
        )
    except ConfigError as exc:
        return config_error_exit(exc)
    if not config.upstream.urls:
        return config_error_exit(
            ConfigError(
                f"{args.config or '<flags>'}: upstream.urls: at least one upstream is required "
                "(--upstream http://host:port)"
            )
        )

    if args.workers != 1:
        from cdn_core.node.workers import serve_workers

        return serve_workers(config, args.workers, log_level=args.log_level)

    async def serve(stop: asyncio.Event) -> None:
        node = Node(config)
        await node.start()
        try:
            await stop.wait()
            log.info("%s %s stopping", config.tier, config.name)
        finally:
            await node.stop()

    return run_service(
        serve, log_level=args.log_level, gc_full_interval=config.gc_full_interval
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "edge", sys.argv[2:]))
