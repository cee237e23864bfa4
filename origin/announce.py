"""``python -m origin.announce URL...``: tell the control plane that these objects are new
or changed (``POST /v1/announce``), so that every cache purges them and the chosen tiers
fetch the new versions at once.

    python -m origin.announce http://www.example.test/index.html --tier mid

Options: ``--api`` (default ``$CDN_API`` or http://127.0.0.1:9000), ``--key`` (a purger
key; default ``$CDN_API_KEY``, else the ``admin.key`` that ``cdnctl up`` wrote),
``--tier mid|edge`` (repeatable; default both). Exit 0 when every purge completed and
every node prewarmed, else 1; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys

from control_plane.cli.common import CliError, call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m origin.announce", description=__doc__)
    parser.add_argument("urls", nargs="+", metavar="URL", help="absolute URL of a changed object")
    parser.add_argument("--api", default=os.environ.get("CDN_API", "http://127.0.0.1:9000"))
    parser.add_argument("--key", help="API key with the purger role")
    parser.add_argument("--tier", action="append", choices=("mid", "edge"))
    args = parser.parse_args(argv)
    body = {"urls": args.urls, "tiers": args.tier or ["mid", "edge"]}
    try:
        _, report = call(args, "POST", "/v1/announce", body)
    except CliError as exc:
        print(f"announce: {exc}", file=sys.stderr)
        return 1
    purged = all(p["state"] == "complete" for p in report["purges"])
    warmed = report["prewarm"]["ok"]
    print(
        f"announced {len(report['purges'])} URLs: purge {'complete' if purged else 'INCOMPLETE'},"
        f" prewarm {'ok' if warmed else 'FAILED on some nodes'}"
    )
    return 0 if purged and warmed else 1


if __name__ == "__main__":
    sys.exit(main())
