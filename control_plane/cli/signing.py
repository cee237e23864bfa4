"""``cdnctl signing-keys`` (the keys edges accept on signed URLs, ``/v1/signing-keys``)
and ``cdnctl sign-url`` :

- ``signing-keys list [--json]``: key ids with a fingerprint (the first 12 hex digits of
  the secret's SHA-256); secrets are never printed.
- ``signing-keys add ID [--secret-file FILE|-]``: add (or replace) a key. Without a file
  a random 256-bit secret is made and printed once; a secret is never taken from the
  command line, where other users of the machine could read it.
- ``signing-keys remove ID``.
- ``sign-url TARGET --kid ID --secret-file FILE|- [--ttl SECONDS] [--client IP]``: print
  TARGET (path and query) signed as the edges check it (:mod:`cdn_core.node.policy.signed`).

A rotation is: ``add`` the new key, sign new URLs with it, ``remove`` the old one once the
URLs signed with it have expired.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cdn_core.node.policy.signed import sign_url
from control_plane.cli.common import CliError, bind, call, table
from control_plane.routes.signing import MIN_SECRET_CHARS


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def _read_secret(path: str) -> str:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--secret-file {path}: {exc.strerror or exc}") from exc
    secret = text.strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise CliError(f"--secret-file {path}: a secret needs {MIN_SECRET_CHARS}+ characters")
    return secret


def cmd_list(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/signing-keys")
    keys = [{"id": k["id"], "fingerprint": _fingerprint(k["secret"])} for k in data["keys"]]
    if args.json:
        print(json.dumps({"version": data["version"], "keys": keys}, indent=2))
        return 0
    if not keys:
        print("no signing keys: signed URLs are refused until one is added")
        return 0
    print(table([["ID", "FINGERPRINT"], *([k["id"], k["fingerprint"]] for k in keys)]))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    made = args.secret_file is None
    secret = secrets.token_urlsafe(32) if made else _read_secret(args.secret_file)
    call(args, "PUT", "/v1/signing-keys/" + quote(args.id, safe=""), {"secret": secret})
    print(
        f"signing key {args.id} added (fingerprint {_fingerprint(secret)}); edges pick it "
        "up at their next heartbeat"
    )
    if made:
        print(secret)
        print("store it now (sign-url needs it): it is not shown again")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    call(args, "DELETE", "/v1/signing-keys/" + quote(args.id, safe=""))
    print(f"signing key {args.id} removed")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    if not args.target.startswith("/"):
        raise CliError("TARGET is a path with its query, starting with '/'")
    if args.ttl <= 0:
        raise CliError("--ttl must be a positive number of seconds")
    expires = int(time.time()) + args.ttl
    print(
        sign_url(
            args.target,
            kid=args.kid,
            secret=_read_secret(args.secret_file),
            expires=expires,
            client=args.client or "",
        )
    )
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser("signing-keys", help="keys the edges accept on signed URLs")
    sub = p.add_subparsers(dest="signing_command", required=True, metavar="ACTION")
    q = sub.add_parser("list", help="key ids and fingerprints", parents=[common])
    q.add_argument("--json", action="store_true")
    bind(q, cmd_list)
    q = sub.add_parser("add", help="add or replace a key", parents=[common])
    q.add_argument("id")
    q.add_argument(
        "--secret-file",
        help="file holding the secret ('-': stdin); default: make a random one and print it once",
    )
    bind(q, cmd_add)
    q = sub.add_parser("remove", help="remove a key", parents=[common])
    q.add_argument("id")
    bind(q, cmd_remove)

    p = subparsers.add_parser("sign-url", help="sign a URL path for the edges (offline)")
    p.add_argument("target", help="path and query, e.g. /private/report.pdf?v=2")
    p.add_argument("--kid", required=True, help="the signing key's id")
    p.add_argument("--secret-file", required=True, help="file holding its secret ('-': stdin)")
    p.add_argument("--ttl", type=int, default=3600, help="seconds the URL stays valid")
    p.add_argument("--client", help="bind the URL to this client address")
    bind(p, cmd_sign)
