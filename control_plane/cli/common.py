"""What every ``cdnctl`` command that talks to the control plane's REST API shares: the
API client (standard library ``urllib``), where the API key comes from, one-line errors,
and table formatting. Public: other tools (``python -m origin.announce``) call the API
through :func:`call` and :class:`CliError` too.

Every command takes ``--key``; without it the API key is ``$CDN_API_KEY``, else the
``admin.key`` that ``cdnctl up`` wrote in the state directory (``$CDN_STATE_DIR``, else
what :func:`control_plane.stack.state_dir` gives for ``cdnctl up`` without flags).
Errors (the API's ``{"error": ...}``, an unreachable control plane) print one line on
stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cdn_core.endpoints import Endpoints, should_fail_over, split_urls

# Seconds to wait for the API. A purge answers after its fan-out, which takes at most
# two node timeouts (mid tier, then edges), so allow well beyond the 2 s default.
TIMEOUT = 60.0
# With several replicas, a GET waits this long before asking the next one (a replica
# that hangs; one that is down is passed over at once).
GET_TIMEOUT = 10.0
TIERS = ("edge", "mid", "origin", "router")


class CliError(Exception):
    """A failure to report as one line (and exit 1)."""


def state_dir() -> Path:
    """Where ``cdnctl up`` keeps its state (see the module docstring)."""
    from cdn_core.errors import ConfigError
    from cdn_core.shipped import config_file
    from control_plane import stack

    try:
        config, base = stack.load_stack(config_file("stack.yaml"))
    except ConfigError:
        config, base = None, Path(".")
    return stack.state_dir(config, base)


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
    """:func:`request` with the API base URL and key of the command line. An answer the
    control plane gave from memory because its database is unreachable (``"stale"``)
    gets a warning line on stderr."""
    status, data = request(args.api, method, path, body, key=api_key(args))
    if isinstance(data, dict) and data.get("stale"):
        print(f"cdnctl: warning: as last read by the control plane ({data['stale']})",
              file=sys.stderr)
    return status, data


def request(
    api: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> tuple[int, Any]:
    """Call the API; returns ``(status, parsed JSON or None)`` for 2xx answers.

    ``api`` may list several control-plane replicas (``URL1,URL2``): the one that answered
    last in this process is asked first; one that cannot be reached or answers 502, 503 or
    504 is passed over for the next (see :mod:`cdn_core.endpoints`). A request that was
    sent and timed out is not sent again elsewhere unless it is a GET.

    Raises:
        CliError: the API answered 4xx/5xx (its ``error`` text) or no replica could be
            reached.
    """
    try:
        endpoints = _ENDPOINTS.setdefault(api, Endpoints(split_urls(api)))
    except ValueError as exc:
        raise CliError(f"--api {api!r}: {exc}") from None
    failures: list[str] = []
    timeout = GET_TIMEOUT if method == "GET" and len(endpoints.urls) > 1 else TIMEOUT
    for base in endpoints.order():
        try:
            status, parsed = _request_one(base, method, path, body, key=key, timeout=timeout)
        except _TryNext as exc:
            failures.append(str(exc))
            continue
        endpoints.answered(base)
        return status, parsed
    if len(failures) == 1:
        raise CliError(failures[0])
    raise CliError("no control plane answered: " + "; ".join(failures))


# Per ``--api`` value: which replica answered last in this process.
_ENDPOINTS: dict[str, Endpoints] = {}


class _TryNext(Exception):
    """This replica did not take the request; another may."""


def _request_one(
    api: str, method: str, path: str, body: dict[str, Any] | None, *, key: str | None,
    timeout: float,
) -> tuple[int, Any]:
    url = api + path
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
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = json.loads(raw)
            message = body["error"]
            # every problem of a rejected document, one per line, with its field path
            problems = body.get("problems") or []
            if problems:
                message = f"{len(problems)} problem(s)\n" + "\n".join(
                    f"  {p['path'] or '(document)'}: {p['message']}" for p in problems)
        except (ValueError, KeyError, TypeError, AttributeError):
            message = raw.decode(errors="replace").strip()[:200] or exc.reason
        if exc.code == 401 and not key:
            message += " (no key: use --key, $CDN_API_KEY or run cdnctl up)"
        text = f"control plane answered {exc.code}: {message}"
        if should_fail_over(exc.code):
            raise _TryNext(text if api in text else f"{text} ({api})") from None
        raise CliError(text) from None
    except TimeoutError:
        if method == "GET":
            raise _TryNext(f"no answer from {api} within {timeout:g} s") from None
        raise CliError(f"no answer from the control plane at {api} within {timeout:g} s"
                       " (the request may have been applied)") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _TryNext(f"cannot reach the control plane at {api}: {reason}") from None


def run(func: Any, args: argparse.Namespace) -> int:
    """``func(args)``, a :class:`CliError` printed as one line and exit status 1."""
    try:
        return int(func(args))
    except CliError as exc:
        print(f"cdnctl: {exc}", file=sys.stderr)
        return 1


def table(rows: list[list[str]]) -> str:
    """Rows (the first one the header) as left-aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def human_bytes(n: Any) -> str:
    """A byte count as ``512 B``, ``1.5 KiB``...; ``-`` for a missing value."""
    if not isinstance(n, int | float):
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def cell(value: Any) -> str:
    """A table cell: ``-`` for None."""
    return "-" if value is None else str(value)


def bind(parser: argparse.ArgumentParser, func: Any) -> None:
    """Make ``func`` the (sub)command's action, its errors one line and exit 1."""
    parser.set_defaults(func=lambda args: run(func, args))


def key_parent() -> argparse.ArgumentParser:
    """The ``--key`` option every API command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--key",
        metavar="KEY",
        help="API key (default $CDN_API_KEY, else admin.key in the cdnctl up state dir)",
    )
    return common


def dump(data: Any) -> None:
    """Print the API's JSON (``--json``)."""
    print(json.dumps(data, indent=2))
