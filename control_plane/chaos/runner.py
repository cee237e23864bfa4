"""``cdnctl chaos list`` and ``cdnctl chaos run [SCENARIO...] [--json]``.

``run`` builds the chaos topology in a fresh temporary directory, starts it (one stack for
all the scenarios asked for), and runs each scenario from a healed stack: proxies back to
``pass``, stopped processes resumed, dead ones restarted. It prints one line per scenario
(or one JSON object per line with ``--json``, then a ``{"summary": ...}`` line) and exits
0 when every check of every scenario held, 1 otherwise, 2 on bad arguments. Whatever
happens (a failed check, an exception, Ctrl-C, SIGTERM) the stack is stopped before it
returns; the work directory (configs, logs) is kept when something failed or with
``--keep``.

Each scenario is bounded (:data:`SCENARIO_TIMEOUT` seconds), and so is every load loop
inside it (request count and duration). Everything listens on ``--net`` (a loopback
/24, ``127.0.3`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCENARIO_TIMEOUT = 60.0
DEFAULT_NET = "127.0.3"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "chaos",
        help="run the chaos suite against a stack of its own on loopback",
        description="Fault-injection scenarios against real processes (issue 9).",
    )
    actions = p.add_subparsers(dest="chaos_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="start a chaos stack and run scenarios (default: all)")
    run.add_argument(
        "scenario", nargs="*", metavar="SCENARIO", help="scenario names (cdnctl chaos list)"
    )
    run.add_argument("--json", action="store_true", help="one JSON object per line")
    run.add_argument(
        "--net",
        default=DEFAULT_NET,
        help=f"loopback /24 for the chaos stack, as 127.X.Y (default {DEFAULT_NET})",
    )
    run.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    run.add_argument(
        "--compose",
        action="store_true",
        help="run every process as a container of a docker-compose project (host "
        "network; needs the Docker engine and the image docker-compose.yml builds)",
    )
    run.add_argument(
        "--image",
        default=None,
        help="image for --compose (default: tiered-cdn:latest, as docker-compose.yml tags it)",
    )
    run.add_argument(
        "--workdir",
        help="directory for configs, state and logs (default: a new temporary "
        "one, removed after a run that passed unless --keep); kept when given",
    )
    run.set_defaults(func=run_command)
    ls = actions.add_parser("list", help="list the scenarios and what each proves")
    ls.add_argument("--json", action="store_true", help="as JSON")
    ls.set_defaults(func=list_command)


def list_command(args: argparse.Namespace) -> int:
    from control_plane.chaos.scenarios import SCENARIOS

    if args.json:
        print(json.dumps([{"name": s.name, "proves": s.proves} for s in SCENARIOS.values()]))
    else:
        width = max(len(n) for n in SCENARIOS)
        for s in SCENARIOS.values():
            print(f"{s.name:<{width}}  {s.proves}")
    return 0


def _line(result: dict[str, Any]) -> str:
    nums = " ".join(
        f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}"
        for k, v in result["numbers"].items()
        if not k.endswith("error_samples")
    )
    head = (
        f"{result['scenario']:<28} {'PASS' if result['ok'] else 'FAIL'} {result['seconds']:5.1f}s"
    )
    out = [f"{head}  {nums}"]
    out += [
        f"    failed: {c['name']}" + (f" ({c['detail']})" if c["detail"] else "")
        for c in result["checks"]
        if not c["ok"]
    ]
    for k, v in result["numbers"].items():
        if k.endswith("error_samples"):
            out.append(f"    {k}: {'; '.join(v)}")
    return "\n".join(out)


async def _run_one(stack: Any, name: str) -> dict[str, Any]:
    from control_plane.chaos.scenarios import SCENARIOS, Run

    run = Run(name, stack)
    t0 = time.monotonic()
    healed = await stack.heal()
    try:
        await asyncio.wait_for(SCENARIOS[name].fn(run), SCENARIO_TIMEOUT)
    except TimeoutError:
        run.check(f"finished within {SCENARIO_TIMEOUT:.0f} s", False)
    except Exception as exc:  # noqa: BLE001 - a broken scenario is reported, the rest run
        run.check("ran without an exception", False, f"{type(exc).__name__}: {exc}")
    return {
        "scenario": name,
        "ok": run.ok,
        "seconds": round(time.monotonic() - t0, 2),
        "numbers": run.numbers,
        "checks": [c.__dict__ for c in run.checks],
        "healed": healed,
    }


async def _run_all(stack: Any, names: list[str], as_json: bool) -> list[dict[str, Any]]:
    results = []
    for name in names:
        result = await _run_one(stack, name)
        results.append(result)
        print(json.dumps(result) if as_json else _line(result), flush=True)
    return results


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def run_command(args: argparse.Namespace) -> int:
    from control_plane.chaos import compose
    from control_plane.chaos.running import ChaosStack
    from control_plane.chaos.scenarios import SCENARIOS
    from control_plane.chaos.topology import build
    from control_plane.stack import parse_net

    names = args.scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(
            f"error: unknown scenario {', '.join(unknown)} (see cdnctl chaos list)",
            file=sys.stderr,
        )
        return 2
    try:
        parse_net(args.net)
    except ValueError as exc:
        print(f"error: --net {exc}", file=sys.stderr)
        return 2
    if args.image and not args.compose:
        print("error: --image goes with --compose", file=sys.stderr)
        return 2
    image = args.image or compose.DEFAULT_IMAGE
    if args.compose and (why := compose.missing(image)) is not None:
        print(f"error: --compose: {why}", file=sys.stderr)
        return 2
    keep = args.keep or args.workdir is not None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cdn-chaos-")).resolve()
    topo = build(workdir, args.net)
    sup = None
    if args.compose:
        project = "cdn-chaos-" + args.net.replace(".", "-")
        sup = compose.ComposeSupervisor(
            list(topo.procs.values()), workdir / "logs", workdir, image, project
        )
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    results: list[dict[str, Any]] = []
    t0 = time.monotonic()
    failed = True
    try:
        if not args.json:
            how = f" in containers ({image})" if args.compose else ""
            print(
                f"starting the chaos stack on {args.net}.0/24{how} (work dir {workdir})",
                flush=True,
            )
        with ChaosStack(topo, sup) as stack:
            started = time.monotonic() - t0
            results = asyncio.run(_run_all(stack, names, args.json))
        failed = not all(r["ok"] for r in results)
        summary = {
            "scenarios": len(results),
            "passed": sum(r["ok"] for r in results),
            "failed": [r["scenario"] for r in results if not r["ok"]],
            "stack_start_s": round(started, 2),
            "seconds": round(time.monotonic() - t0, 2),
        }
        if args.json:
            print(json.dumps({"summary": summary}), flush=True)
        else:
            print(
                f"{summary['passed']}/{summary['scenarios']} scenarios passed in "
                f"{summary['seconds']:.1f} s (stack start {started:.1f} s)",
                flush=True,
            )
        return 1 if failed else 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the chaos stack is stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old)
        if failed or keep:
            print(f"configs and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
