"""The options every command that starts or inspects the one-host stack shares (``cdnctl
up``, ``cdnctl doctor``): which stack file, where its state lives, and which loopback
network it runs on."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cdn_core.errors import ConfigError
from cdn_core.shipped import config_file
from control_plane.netcheck import free_net
from control_plane.stack import StackConfig, load_stack, log_dir, on_net, parse_net, state_dir


@dataclass(frozen=True)
class SelectedStack:
    """The stack a command works on: its config (already moved by ``--net``), the stack
    file, the directory the file's relative paths start from, and the state and log
    directories (absolute)."""

    stack: StackConfig
    file: Path
    base: Path
    state: Path
    logs: Path
    net: str | None


def _net(text: str) -> str:
    if text == "auto":
        return text
    try:
        return parse_net(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _replicas(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 9:
        raise argparse.ArgumentTypeError(f"expected 1 to 9 replicas, got {text!r}")
    return int(text)


def add_arguments(p: Any) -> None:
    """``--config``, ``--state-dir``, ``--net``, ``--db`` and ``--control-replicas`` on the
    sub-command parser ``p``."""
    p.add_argument(
        "--config",
        help="stack file (default ./configs/stack.yaml, else the one the package ships)",
    )
    p.add_argument(
        "--state-dir",
        help="keys, database, caches, TLS and logs (default $CDN_STATE_DIR, the stack "
        "file's state_dir, $XDG_STATE_HOME/tiered-cdn, else ./run)",
    )
    p.add_argument(
        "--net",
        type=_net,
        metavar="127.X.Y",
        help="move every address of the stack to this loopback /24 (ports stay), to run "
        "a second stack beside the first; 'auto' picks a free one; its default state dir "
        "gets net-127.X.Y",
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="the control plane's database (postgresql://user@host/db; default $CDN_DB, "
        "else the stack file's, else SQLite in the state dir)",
    )
    p.add_argument(
        "--control-replicas",
        type=_replicas,
        metavar="N",
        help="control-plane processes sharing the database, on consecutive ports (default: "
        "the stack file's control_plane.replicas, 1)",
    )


def select(args: argparse.Namespace) -> SelectedStack:
    """The stack ``args`` name (see :func:`add_arguments`).

    Raises:
        ConfigError: the stack file is missing or invalid, naming the file and the field.
    """
    file = Path(args.config) if args.config else config_file("stack.yaml")
    stack, base = load_stack(file)
    cp: dict[str, Any] = {}
    db = getattr(args, "db", None) or os.environ.get("CDN_DB")
    if db:
        cp["db"] = db
    if getattr(args, "control_replicas", None):
        cp["replicas"] = args.control_replicas
    if cp:
        try:
            stack = StackConfig.model_validate({**stack.model_dump(), "control_plane": {
                **stack.control_plane.model_dump(), **cp}})
        except ValidationError as exc:
            raise ConfigError(f"{file}: {exc.errors()[0]['msg']}") from None
    net = args.net
    if net == "auto":
        try:
            net = free_net(stack)
        except OSError as exc:
            raise ConfigError(f"{file}: --net auto: {exc}") from None
    if net:
        try:
            stack = on_net(stack, net)
        except ValueError as exc:
            raise ConfigError(f"{file}: --net {net}: {exc}") from None
    state = state_dir(stack, base, args.state_dir, os.environ, net)
    return SelectedStack(stack, file, base, state, log_dir(stack, base, state), net)
