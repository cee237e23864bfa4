"""``cdnctl cluster [--json]``: the control-plane replicas sharing the database, which one
leads (holds the lease) and until when (``GET /v1/cluster``)."""

from __future__ import annotations

import argparse
from typing import Any

from control_plane.cli.common import bind, call, dump, table


def cmd_cluster(args: argparse.Namespace) -> int:
    _, data = call(args, "GET", "/v1/cluster")
    if args.json:
        dump(data)
        return 0
    lease = data.get("lease")
    if data.get("leader") and lease:
        print(f"leader {data['leader']} (term {lease['term']}, lease renewed every tick,"
              f" expires in {lease['expires_in']:.1f} s)")
    else:
        print("no leader: the lease has expired (a replica takes it at its next tick)")
    rows = [["REPLICA", "URL", "ALIVE", "LEADER", "LAST SEEN"]]
    for r in data["replicas"]:
        me = " (answered)" if r["id"] == data["self"]["id"] else ""
        rows.append([r["id"] + me, r["url"], "yes" if r["alive"] else "NO",
                     "yes" if r["leader"] else "", f"{r['age']:.1f} s ago"])
    print(table(rows))
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's commands to cdnctl's subparsers."""
    p = subparsers.add_parser(
        "cluster", help="control-plane replicas and the leader", parents=[common])
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    bind(p, cmd_cluster)
