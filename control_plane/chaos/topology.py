"""The chaos topology: the one-host layout of ``configs/stack.yaml`` (origin, two mid-tier
nodes, three edges, router, control plane) on addresses of its own, with settings that
make failures visible within seconds, and fault proxies between tiers.

Addresses (``NET`` is ``127.0.3`` unless told otherwise; nothing collides with the default
stack, which uses 127.0.1.1-3:8080, 127.0.0.1:5353, 9000, 18080, 18201-18202, 19xxx)::

    edges   edge1-3   NET.1-3:8080     admin :9080   upstreams: proxy edge-mid1, mid2
    mids    mid1-2    NET.11-12:8080   admin :9080   upstream: proxy mid-origin
    origin            NET.20:8080      admin :9080
    proxies mid-origin NET.21:8080 -> origin;   edge-mid1 NET.22:8080 -> mid1
    router            NET.40:5353      admin :9053
    control plane     NET.50:9000 and NET.50:9001 (two replicas, one leads)

The command lines come from :func:`control_plane.stack.processes` (the same code
``cdnctl up`` uses) over a generated :class:`~control_plane.stack.StackConfig`; only the
``--upstream`` flags are rewritten to go through the proxies. Processes are run by the
launcher's :class:`~control_plane.launcher.Supervisor`.

Settings: objects are fresh for :data:`MAX_AGE` seconds; upstream timeouts are 1 s on
the mid tier and 2.5 s on the edges (an edge must outwait a mid that is itself timing
out), ``retry_after`` 1 s; the mid tier has a failover window; the router probes every
0.25 s and answers two addresses with a 1 s TTL; the control plane retries purges every
0.5 s. Credentials (admin key, reader key, node token) are made in the work directory by
the launcher's :func:`~control_plane.launcher.ensure_credentials`, as ``cdnctl up`` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cdn_core.hashing import rendezvous_order
from cdn_core.node.exchange.keys import cache_key
from control_plane.launcher import ensure_credentials
from control_plane.stack import Process, StackConfig, processes

SITE = "www.example.test"
NET = "127.0.3"
PORT = 8080
MAX_AGE = 2
FAILOVER_WINDOW = 300.0
MID_TIMEOUT = 1.0
EDGE_TIMEOUT = 2.5
RETRY_AFTER = 1.0
WATCH_INTERVAL = 0.25  # the control plane's origin watch (automatic failover)


@dataclass
class Topology:
    """Where everything of one chaos stack lives (see the module docstring)."""

    net: str
    workdir: Path
    stack: StackConfig
    procs: dict[str, Process]
    proxies: dict[str, tuple[tuple[str, int], tuple[str, int]]]
    admin_key: str
    edge_upstreams: dict[str, str] = field(default_factory=dict)  # url -> mid name

    @property
    def api(self) -> str:
        cp = self.stack.control_plane
        return f"http://{cp.host}:{cp.port}"

    @property
    def edges(self) -> list[str]:
        return [n.host for n in self.stack.edges.nodes]

    @property
    def edge_names(self) -> dict[str, str]:
        return {n.host: n.name for n in self.stack.edges.nodes}

    @property
    def mids(self) -> list[str]:
        return [n.name for n in self.stack.mid_tier.nodes]

    @property
    def router(self) -> tuple[str, int]:
        return self.stack.router.host, self.stack.router.port

    @property
    def content(self) -> Path:
        return self.workdir / "site"

    def origin_admin(self) -> str:
        return self.procs["origin"].admin_url

    def owner(self, path: str) -> list[str]:
        """Mid-tier node names in the rendezvous order edges use for ``path``."""
        key = cache_key("http", SITE, path)
        urls = rendezvous_order(key, list(self.edge_upstreams))
        return [self.edge_upstreams[u] for u in urls]


def _reroute(p: Process, via: dict[str, str]) -> Process:
    """``p`` with each ``--upstream URL`` that a proxy stands in front of replaced by the
    proxy's URL; origin-facing proxies apply to mids, mid-facing ones to edges."""
    argv = list(p.argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == "--upstream" and argv[i + 1] in via:
            argv[i + 1] = via[argv[i + 1]]
    return dataclasses.replace(p, argv=argv)


def _write_yaml(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path.name


def build(workdir: Path, net: str = NET) -> Topology:
    """Write the chaos stack's configuration into ``workdir`` and return its topology."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "site").mkdir(exist_ok=True)
    (workdir / "site" / "index.html").write_text("<html>chaos</html>\n")
    # the same secrets `cdnctl up` makes (admin.key, reader.key, node.token), passed the
    # same way: processes() puts them on the command lines and in the environment
    credentials = ensure_credentials(workdir)
    admin_key = credentials.admin_key_file.read_text(encoding="utf-8").strip()
    control = {"interval": 0.5, "timeout": 1.0}
    _write_yaml(
        workdir / "origin.yaml",
        {
            "name": "origin",
            "not_found_cache_control": "no-store",
            "cache_rules": [
                # objects a purge must remove stay fresh; everything else expires fast
                {"match": "*/pinned-*", "cache_control": "public, max-age=300"},
                {"match": "*", "cache_control": f"public, max-age={MAX_AGE}"},
                {"match": "*", "surrogate_keys": ["chaos"]},
            ],
        },
    )
    _write_yaml(
        workdir / "mid_tier.yaml",
        {
            "tier": "mid",
            "cache": {"max_bytes": 64 << 20},
            "upstream": {
                "connect_timeout": 0.5,
                "timeout": MID_TIMEOUT,
                "retry_after": RETRY_AFTER,
            },
            "failover_window": FAILOVER_WINDOW,
            "control": control,
        },
    )
    _write_yaml(
        workdir / "edge.yaml",
        {
            "tier": "edge",
            "cache": {
                "max_bytes": 64 << 20,
                "targeted_fields": ["Edge-Cache-Control", "CDN-Cache-Control"],
                "strip_targeted_fields": True,
            },
            "upstream": {
                "connect_timeout": 0.5,
                "timeout": EDGE_TIMEOUT,
                "retry_after": RETRY_AFTER,
            },
            "control": control,
        },
    )
    _write_yaml(
        workdir / "router.yaml",
        {
            "name": "router",
            "zones": [
                {
                    "name": "example.test",
                    "soa": {
                        "mname": "ns1.example.test",
                        "rname": "hostmaster.example.test",
                        "serial": 1,
                        "refresh": 3600,
                        "retry": 600,
                        "expire": 604800,
                        "minimum": 5,
                        "ttl": 3600,
                    },
                    "nameservers": [{"name": "ns1.example.test", "addresses": [f"{net}.40"]}],
                    "services": [SITE],
                }
            ],
            "answers": {"ttl": 1, "degraded_ttl": 1, "per_query": 2},
            "health": {"interval": 0.25, "timeout": 0.25, "fall": 2, "rise": 2},
            "control_plane": {"poll_interval": 1.0, "timeout": 1.0},
        },
    )
    _write_yaml(
        workdir / "control_plane.yaml",
        {
            "name": "control",
            "purge": {"node_timeout": 1.0, "retry_interval": 0.5},
            "failover": {"interval": WATCH_INTERVAL, "fall": 2, "rise": 2},
        },
    )
    stack = StackConfig.model_validate(
        {
            "site": SITE,
            "log_dir": "logs",
            "state_dir": ".",
            "startup_timeout": 30,
            "origin": {
                "config": "origin.yaml",
                "host": f"{net}.20",
                "port": PORT,
                "admin_port": 9080,
                "root": "site",
            },
            "mid_tier": {
                "config": "mid_tier.yaml",
                "nodes": [
                    {"name": f"mid{i}", "host": f"{net}.{10 + i}", "port": PORT, "admin_port": 9080}
                    for i in (1, 2)
                ],
            },
            "edges": {
                "config": "edge.yaml",
                "nodes": [
                    {"name": f"edge{i}", "host": f"{net}.{i}", "port": PORT, "admin_port": 9080}
                    for i in (1, 2, 3)
                ],
            },
            "router": {
                "config": "router.yaml",
                "host": f"{net}.40",
                "port": 5353,
                "admin_port": 9053,
            },
            # Two replicas sharing the SQLite file in the work directory (WAL; writes are
            # serialised across processes), so one can be killed (control-replica-killed).
            "control_plane": {"config": "control_plane.yaml", "host": f"{net}.50",
                              "port": 9000, "replicas": 2},
        }
    )
    _write_yaml(workdir / "stack.yaml", stack.model_dump())
    origin = (f"{net}.20", PORT)
    mid1 = (f"{net}.11", PORT)
    proxies = {
        "mid-origin": ((f"{net}.21", PORT), origin),
        "edge-mid1": ((f"{net}.22", PORT), mid1),
    }
    via = {f"http://{h}:{p}": f"http://{lh}:{lp}" for (lh, lp), (h, p) in proxies.values()}
    procs: dict[str, Process] = {}
    for p in processes(stack, workdir, workdir, credentials=credentials):
        procs[p.name] = _reroute(p, via)
    edge_upstreams = {}
    for n in stack.mid_tier.nodes:
        direct = f"http://{n.host}:{n.port}"
        edge_upstreams[via.get(direct, direct)] = n.name
    return Topology(net, workdir, stack, procs, proxies, admin_key, edge_upstreams)
