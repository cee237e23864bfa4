"""Running the chaos :class:`~control_plane.chaos.topology.Topology`: its processes under
the launcher's supervisor, the fault proxies between tiers, and the operations scenarios
use (kill, stop, continue, restart, inject a fault, wait for health, heal, call the API).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.request
from typing import Any

import aiohttp

from control_plane.chaos.faultproxy import Fault, FaultProxy, FaultProxyThread
from control_plane.chaos.topology import Topology
from control_plane.launcher import Supervisor


def busy_addresses(topo: Topology) -> list[str]:
    """Addresses of the chaos stack something already listens on (TCP)."""
    busy = []
    addrs = [(p.host, p.port) for p in topo.procs.values()] + [
        listen for listen, _ in topo.proxies.values()
    ]
    for host, port in addrs:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                busy.append(f"{host}:{port}")
    return busy


class ChaosStack:
    """Runs a :class:`Topology`: processes under a launcher :class:`Supervisor` (or, with
    ``sup``, anything with its interface: :mod:`control_plane.chaos.compose` runs them as
    containers), fault proxies on a :class:`FaultProxyThread`. Use as a context manager:
    leaving it (also on an exception or Ctrl-C) resumes stopped processes and stops
    everything."""

    def __init__(self, topo: Topology, sup: Supervisor | None = None) -> None:
        self.topo = topo
        self.sup = sup or Supervisor(list(topo.procs.values()), topo.workdir / "logs")
        self.proxies = FaultProxyThread()
        self.stopped: set[str] = set()
        self._old: list[subprocess.Popen[bytes]] = []

    # lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> ChaosStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Bind the proxies, start every process, wait until all are healthy, register
        the nodes with the control plane.

        Raises:
            RuntimeError: an address is taken, or a process did not become healthy.
        """
        busy = busy_addresses(self.topo)
        if busy:
            raise RuntimeError(f"chaos stack addresses already in use: {', '.join(busy)}")
        self.proxies.start(
            [FaultProxy(name, listen, up) for name, (listen, up) in self.topo.proxies.items()]
        )
        self.sup.start_all()
        bad = self.sup.wait_healthy(self.topo.stack.startup_timeout)
        if bad:
            names = ", ".join(f"{p.name} ({self.sup.log_tail(p.name, 2) or 'no log'})" for p in bad)
            raise RuntimeError(f"chaos stack not healthy: {names}")
        self.register_nodes()

    def close(self) -> None:
        for name in list(self.stopped):
            self.cont(name)
        if self.sup.children:
            self.sup.stop_all()
        for old in self._old:
            with contextlib.suppress(subprocess.TimeoutExpired):
                old.wait(5)
        self.proxies.stop()

    def register_nodes(self) -> None:
        """Register the origin and every caching node (``PUT /v1/nodes/{name}`` with the
        admin key), as ``cdnctl up`` does: purges fan out to the caches, and the origin
        watch probes the origin."""
        for p in self.topo.procs.values():
            if p.tier not in ("origin", "mid", "edge"):
                continue
            body = {"tier": p.tier, "host": p.host, "port": p.port, "admin_url": p.admin_url}
            req = urllib.request.Request(
                f"{self.topo.api}/v1/nodes/{p.name}",
                data=json.dumps(body).encode(),
                method="PUT",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.topo.admin_key}",
                },
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"registering {p.name}: HTTP {resp.status}")

    # faults ------------------------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        child = self.sup.children[name]
        if name in self.stopped:
            self.cont(name)
        child.send_signal(sig)
        child.wait(10)

    def stop(self, name: str) -> None:
        self.sup.children[name].send_signal(signal.SIGSTOP)
        self.stopped.add(name)

    def cont(self, name: str) -> None:
        child = self.sup.children.get(name)
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGCONT)
        self.stopped.discard(name)

    def restart(self, name: str) -> None:
        old = self.sup.children[name]
        if old.poll() is None:
            self.kill(name, signal.SIGTERM)
        self._old.append(old)
        self.sup.start(self.topo.procs[name])

    def fault(self, proxy: str, fault: Fault) -> None:
        self.proxies.set_fault(proxy, fault)

    async def wait_healthy(self, name: str, timeout: float = 20.0) -> float:
        """Seconds until ``name`` answers its health URL with 200.

        Raises:
            RuntimeError: not healthy within ``timeout`` seconds, or it exited.
        """
        p = self.topo.procs[name]
        t0 = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as s:
            while time.monotonic() - t0 < timeout:
                if self.sup.children[name].poll() is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with s.get(p.health_url) as r:
                        if r.status == 200:
                            return time.monotonic() - t0
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{name} not healthy: {self.sup.log_tail(name, 3)}")

    async def heal(self) -> list[str]:
        """Undo every fault: proxies back to pass, stopped processes resumed, exited
        ones restarted; returns the names it had to restart."""
        for name in self.topo.proxies:
            self.fault(name, Fault())
        for name in list(self.stopped):
            self.cont(name)
        restarted = [p.name for p, _ in self.sup.exited()]
        for name in restarted:
            self.restart(name)
        for name in self.topo.procs:
            await self.wait_healthy(name)
        await self._lift_failover()
        return restarted

    async def _lift_failover(self) -> None:
        """Turn off a failover an earlier scenario's fault left forced (the origin watch
        would lift it too, a few rounds after the mid tiers reach the origin again)."""
        status, _ = await self.api("PUT", "/v1/origins/failover", {"forced": False})
        if status != 200:
            raise RuntimeError(f"lifting failover: HTTP {status}")

    async def api(self, method: str, path: str, body: Any = None,
                  base: str | None = None) -> tuple[int, Any]:
        """Call the control plane (its first replica, or the one at ``base``) with the
        admin key: ``(status, JSON body)``, status 0 when it is unreachable."""
        headers = {"Authorization": f"Bearer {self.topo.admin_key}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
                s.request(method, f"{base or self.topo.api}{path}", json=body,
                          headers=headers) as r,
            ):
                return r.status, await r.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return 0, None
