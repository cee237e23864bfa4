"""``cdnctl services``: sites served by the CDN, each in immutable versions (issue 20).

- ``apply FILE.yaml [--activate [--wait]] [--comment TEXT]``: declarative, like ``kubectl
  apply``: makes a new version from the file (none when it equals the latest) and
  prints the diff; ``--activate`` activates it.
- ``validate FILE.yaml``: every problem with its field path; stores nothing.
- ``list``, ``show NAME``, ``versions NAME``, ``diff NAME A B``.
- ``activate NAME VERSION [--wait]``, ``rollback NAME [--wait]``: ``--wait`` shows
  progress until every edge and mid tier runs the version (``--timeout`` seconds).
- ``delete NAME``: no node serves it any more.

Every command takes ``--json`` (the API's answer). Exit status 1 on an error, and for
``--wait`` when the timeout passed before every node ran the version.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from control_plane.cli.common import CliError, bind, call, cell, dump, table


def _read(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: not valid YAML: {exc}") from None


def _path(name: str, *rest: str) -> str:
    return "/v1/services/" + "/".join(quote(p, safe="") for p in (name, *rest))


def _progress_line(progress: dict[str, Any] | None) -> str:
    if not progress:
        return "not active"
    line = f"v{progress['version']} on {progress['done']}/{progress['total']} nodes"
    if progress["pending_nodes"]:
        line += " (waiting for " + ", ".join(progress["pending_nodes"]) + ")"
    return line


def _wait(args: argparse.Namespace, service: dict[str, Any]) -> dict[str, Any]:
    """Poll until every node runs the active version or ``--timeout`` passes."""
    started = time.monotonic()
    while True:
        progress = service.get("progress") or {}
        elapsed = time.monotonic() - started
        if not args.json:
            print(f"\r{_progress_line(progress)} {elapsed:.1f}s", end="", file=sys.stderr,
                  flush=True)
        if progress.get("state") == "complete" or elapsed >= args.timeout:
            break
        time.sleep(0.1 if elapsed < 2 else 0.5)
        _, service = call(args, "GET", _path(service["name"]))
    if not args.json:
        print(file=sys.stderr)
    return service


def _activated(args: argparse.Namespace, service: dict[str, Any]) -> int:
    if getattr(args, "wait", False):
        service = _wait(args, service)
    if args.json:
        dump(service)
    else:
        print(f"service {service['name']}: active version {service['active_version']}, "
              f"{_progress_line(service['progress'])}")
    complete = (service.get("progress") or {}).get("state") == "complete"
    return 1 if getattr(args, "wait", False) and not complete else 0


def cmd_apply(args: argparse.Namespace) -> int:
    document = _read(args.file)
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise CliError(f"{args.file}: a service file is a mapping with a name")
    _, out = call(args, "POST", _path(document["name"], "versions"),
                  {"document": document, "comment": args.comment})
    if args.json and not args.activate:
        dump(out)
        return 0
    if not args.json:
        if out["unchanged"]:
            print(f"service {document['name']}: unchanged (version {out['version']})")
        else:
            print(f"service {document['name']}: version {out['version']} created")
            for change in out["diff"]:
                print("  " + change["line"])
    if not args.activate:
        return 0
    _, service = call(args, "POST", _path(document["name"], "activate"),
                      {"version": out["version"]})
    return _activated(args, service)


def cmd_validate(args: argparse.Namespace) -> int:
    call(args, "POST", "/v1/services/validate", _read(args.file))
    print(f"{args.file}: valid")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/services")
    if args.json:
        dump(data)
        return 0
    if not data["services"]:
        print("no services (cdnctl services apply FILE.yaml adds one)")
        return 0
    rows = [["NAME", "DOMAINS", "ACTIVE", "LATEST", "ROLLOUT"]]
    for s in data["services"]:
        rows.append([s["name"], ",".join(s["domains"]), cell(s["active_version"]),
                     str(s["latest_version"]), _progress_line(s["progress"])])
    print(table(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _, service = call(args, "GET", _path(args.name))
    if args.json:
        dump(service)
        return 0
    print(f"service {service['name']}: active version {cell(service['active_version'])}, "
          f"latest {service['latest_version']}, {_progress_line(service['progress'])}")
    if service["active"]:
        print(yaml.safe_dump(service["active"], sort_keys=False).rstrip())
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", _path(args.name, "versions"))
    if args.json:
        dump(data)
        return 0
    rows = [["VERSION", "CREATED", "ACTIVE", "COMMENT"]]
    for v in data["versions"]:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v["created_at"]))
        rows.append([str(v["version"]), created, "yes" if v["active"] else "", v["comment"]])
    print(table(rows))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", _path(args.name, "diff") + f"?from={args.a}&to={args.b}")
    if args.json:
        dump(data)
    else:
        print("\n".join(c["line"] for c in data["changes"]) or "no differences")
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    _, service = call(args, "POST", _path(args.name, "activate"), {"version": args.version})
    return _activated(args, service)


def cmd_rollback(args: argparse.Namespace) -> int:
    _, service = call(args, "POST", _path(args.name, "rollback"))
    return _activated(args, service)


def cmd_delete(args: argparse.Namespace) -> int:
    call(args, "DELETE", _path(args.name))
    if args.json:
        dump({"deleted": args.name})
    else:
        print(f"service {args.name} deleted: no node serves it any more")
    return 0


def _wait_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--wait", action="store_true",
                   help="show progress until every edge and mid tier runs the version")
    q.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser("services", help="sites (services) and their versions")
    sub = p.add_subparsers(dest="services_command", required=True, metavar="ACTION")

    def add(name: str, func: Any, help_text: str, *positional: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help_text, parents=[common])
        for arg in positional:
            q.add_argument(arg, type=int if arg in ("version", "a", "b") else str)
        q.add_argument("--json", action="store_true")
        bind(q, func)
        return q

    q = add("apply", cmd_apply, "create a version from a file (and activate it)", "file")
    q.add_argument("--activate", action="store_true", help="activate the new version")
    q.add_argument("--comment", default="", help="kept with the version")
    _wait_options(q)
    add("validate", cmd_validate, "check a service file; stores nothing", "file")
    add("list", cmd_list, "services with their active version")
    add("show", cmd_show, "one service and its active document", "name")
    add("versions", cmd_versions, "a service's versions", "name")
    add("diff", cmd_diff, "changes between two versions", "name", "a", "b")
    _wait_options(add("activate", cmd_activate, "activate a version", "name", "version"))
    _wait_options(add("rollback", cmd_rollback, "activate the version active before", "name"))
    add("delete", cmd_delete, "stop serving a service", "name")
