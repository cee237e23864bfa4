"""What every chaos scenario shares: the :class:`Run` it records numbers and checks on,
the :func:`scenario` registry, and helpers for load with a fault injected mid-way and for
counting what reached the origin."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from control_plane.chaos.load import LoadStats, get_once, run_load
from control_plane.chaos.running import ChaosStack
from control_plane.chaos.topology import MAX_AGE, PORT, SITE


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Run:
    """What one scenario measured and checked, and the helpers it measures with."""

    name: str
    stack: ChaosStack
    numbers: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def topo(self) -> Any:
        return self.stack.topo

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def record(self, prefix: str, stats: LoadStats) -> None:
        d = stats.as_dict()
        for key in ("requests", "errors", "stale", "retries", "p50_ms", "max_ms"):
            self.numbers[f"{prefix}{key}"] = d[key]
        if stats.error_samples:
            self.numbers[f"{prefix}error_samples"] = stats.error_samples

    # content and requests ----------------------------------------------------------------
    def files(self, count: int, stem: str = "obj") -> list[str]:
        """Write ``count`` small objects for this scenario; returns their request paths."""
        d = self.topo.content / self.name
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(count):
            name = f"{stem}-{i:02d}.txt"
            (d / name).write_text(f"{self.name} {stem} {i}\n" * 8)
            paths.append(f"/{self.name}/{name}")
        return paths

    async def get(self, edge: str, path: str) -> tuple[int, dict[str, str], bytes]:
        return await get_once(edge, PORT, SITE, path)

    async def warm(self, paths: list[str], edges: list[str] | None = None) -> None:
        """Fetch every path through every edge (so every tier holds it)."""
        bad = []
        for edge in edges or self.topo.edges:
            results = await asyncio.gather(*(self.get(edge, p) for p in paths))
            bad += [
                f"{edge}{p}: {s}" for p, (s, _, _) in zip(paths, results, strict=True) if s != 200
            ]
        self.check("warm-up fetched every object", not bad, ", ".join(bad[:3]))

    async def load(self, paths: list[str], **kw: Any) -> LoadStats:
        args: dict[str, Any] = {"edges": self.topo.edges, "concurrency": 10, "rate": 120.0}
        if "resolver" in kw:
            args.pop("edges")
        args.update(kw)
        return await run_load(paths=paths, host=SITE, port=PORT, **args)

    async def origin_counts(self) -> dict[str, int]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s,
            s.get(f"{self.topo.origin_admin()}/status") as r,
        ):
            return dict((await r.json())["by_path"])

    async def edge_upstream_fetches(self) -> int:
        total = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
            for name in self.topo.edge_names.values():
                async with s.get(f"{self.topo.procs[name].admin_url}/status") as r:
                    total += sum(int(u["fetches"]) for u in (await r.json())["upstreams"])
        return total

    async def router_edge_state(self, name: str) -> str | None:
        """The router's health state of edge ``name`` (from its admin ``/status``)."""
        url = f"{self.topo.procs['router'].admin_url}/status"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s,
                s.get(url) as r,
            ):
                edges = (await r.json())["edges"]
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
            return None
        return next((str(e.get("state")) for e in edges if e.get("name") == name), None)

    async def api(self, method: str, path: str, body: Any = None,
                  base: str | None = None) -> tuple[int, Any]:
        """:meth:`ChaosStack.api`."""
        return await self.stack.api(method, path, body, base)


ScenarioFn = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    proves: str
    fn: ScenarioFn


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, proves: str) -> Callable[[ScenarioFn], ScenarioFn]:
    def deco(fn: ScenarioFn) -> ScenarioFn:
        SCENARIOS[name] = Scenario(name, proves, fn)
        return fn

    return deco


async def load_with(
    run: Run, paths: list[str], inject: Callable[[], None], after: float = 0.5, **kw: Any
) -> LoadStats:
    """Run load and call ``inject`` ``after`` seconds into it (faults hit requests in
    flight, not only the ones sent later)."""
    task = asyncio.create_task(run.load(paths, **kw))
    try:
        await asyncio.sleep(after)
    finally:
        inject()
    return await task


HERD = "failing origin asked at most once per key per expiry (serve-stale mode)"


def herd_check(run: Run, asked: int, keys: int, seconds: float) -> None:
    allowed = keys * (math.ceil(seconds / MAX_AGE) + 1)
    run.numbers["origin_asked_while_failing"] = asked
    run.numbers["origin_asked_allowed"] = allowed
    run.check(
        HERD, asked <= allowed, f"{asked} requests reached the failing origin for {keys} keys"
    )


def proxy_stats(run: Run, name: str) -> dict[str, Any]:
    return next(p for p in run.stack.proxies.snapshot() if p["name"] == name)


def per_key(before: dict[str, int], after: dict[str, int], paths: list[str]) -> list[int]:
    return [after.get(p, 0) - before.get(p, 0) for p in paths]
