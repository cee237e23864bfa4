"""The three CDNs a replay runs against, each three edges and two mid tiers in front of
our origin in synthetic-object mode, on one free loopback network (the addresses
``cdnctl up`` would use there):

- ``ours``: ``cdnctl up`` itself (router, control plane, nodes), with the byte budgets
  in copies of the shipped node configs and the mid tiers' disk tier off (memory only,
  like the peers' budgets).
- ``nginx``: nginx edges (``hash $request_uri consistent`` to the mids) and nginx mids,
  ``proxy_cache`` with the same budgets, ``proxy_cache_lock on``.
- ``varnish``: Varnish edges (shard director by URL) and mids, ``-s malloc`` budgets.

Every stack reports the PIDs whose process trees are the CDN (the origin excluded: it
is the same for all), and the origin's counters from its ``/metrics``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.perf.procs import Procs, wait_tcp
from bench.perf.proctree import tree
from bench.perf.servers import fill_template
from bench.replay.resolve import DnsEdges, FixedEdges
from bench.replay.tally import OriginCounts
from bench.replay.workload import Budgets
from control_plane.netcheck import free_net
from control_plane.stack import StackConfig, load_stack, on_net

REPO = Path(__file__).resolve().parents[2]
CONF = Path(__file__).parent / "conf"
STACK = REPO / "configs" / "stack.yaml"
NAMES = ("ours", "nginx", "varnish")
START_TIMEOUT = 90.0  # seconds


def shipped_defaults() -> tuple[int, int, int, int]:
    """(edges, mids, edge max_bytes, mid max_bytes) of the shipped one-host stack."""
    stack, _ = load_stack(STACK)
    edge = yaml.safe_load((REPO / "configs" / "edge.yaml").read_text())
    mid = yaml.safe_load((REPO / "configs" / "mid_tier.yaml").read_text())
    return (len(stack.edges.nodes), len(stack.mid_tier.nodes),
            int(edge["cache"]["max_bytes"]), int(mid["cache"]["max_bytes"]))


def origin_counts(admin: str) -> OriginCounts:
    """Requests answered and body bytes sent so far, from the origin's ``/metrics``."""
    with urllib.request.urlopen(f"{admin}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    requests = sent = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cdn_origin_requests_total":
                requests += sample.value
            elif sample.name == "cdn_origin_response_bytes_total":
                sent += sample.value
    return OriginCounts(int(requests), int(sent))


def wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    try:
        wait_tcp(port, proc, timeout=START_TIMEOUT, host=host)
    except RuntimeError as exc:
        raise RuntimeError(f"{what}: {exc}") from exc


def _fill(template: str, **values: object) -> str:
    return fill_template(CONF / template, **values)


@dataclass
class Layout:
    """Where the nodes listen: ``on_net`` of the shipped stack."""

    stack: StackConfig
    net: str

    @classmethod
    def free(cls) -> Layout:
        config, _ = load_stack(STACK)
        net = free_net(config)
        return cls(on_net(config, net), net)

    @property
    def origin_admin(self) -> str:
        o = self.stack.origin
        return f"http://{o.host}:{o.admin_port}"


class Stack:
    """Base: ``start()``, then ``edges()`` and ``cdn_pids()``, then ``stop()``."""

    name = ""

    def __init__(self, run_dir: Path, budgets: Budgets,
                 policies: dict[str, str] | None = None) -> None:
        self.run = run_dir
        self.run.mkdir(parents=True, exist_ok=True)
        self.budgets = budgets
        self.policies = policies or {}  # ours only: {"edge.yaml"|"mid_tier.yaml": policy}
        self.layout = Layout.free()
        self.procs = Procs(run_dir)

    @property
    def site(self) -> str:
        return self.layout.stack.site

    @property
    def edge_port(self) -> int:
        return self.layout.stack.edges.nodes[0].port

    def origin_counts(self) -> OriginCounts:
        return origin_counts(self.layout.origin_admin)

    def node_bytes(self) -> tuple[int, int]:
        """Cache bytes each edge and each mid tier actually gets."""
        return self.budgets.edge_bytes, self.budgets.mid_bytes

    def edges(self) -> DnsEdges | FixedEdges:
        return FixedEdges([n.host for n in self.layout.stack.edges.nodes])

    def stored_bytes(self) -> int | None:
        """Bytes the caches hold now, where the budget is not enforced as they are
        stored (None: it is)."""
        return None

    def cdn_pids(self) -> list[int]:
        """Every process of the CDN now (each once; the origin's left out)."""
        return [pid for name, p in self.procs.started.items() if name != "origin"
                for pid in tree(p.pid)]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.procs.stop_all()

    def _start_origin(self) -> None:
        o = self.layout.stack.origin
        proc = self.procs.start("origin", [
            sys.executable, "-m", "origin", "--synthetic", "--host", o.host,
            "--port", str(o.port), "--admin-port", str(o.admin_port),
            "--log-level", "WARNING"], cwd=REPO)
        wait_listening(o.host, o.admin_port, proc, "origin")


class Ours(Stack):
    """``cdnctl up`` on the layout's network, state under the run directory."""

    name = "ours"

    def _configs(self) -> Path:
        conf = self.run / "configs"
        conf.mkdir(exist_ok=True)
        for name, budget in (("edge.yaml", self.budgets.edge_bytes),
                             ("mid_tier.yaml", self.budgets.mid_bytes)):
            cfg = yaml.safe_load((REPO / "configs" / name).read_text())
            cfg["cache"]["max_bytes"] = budget
            if name in self.policies:
                cfg["cache"]["policy"] = self.policies[name]
            (conf / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
        origin = yaml.safe_load((REPO / "configs" / "origin.yaml").read_text())
        origin["synthetic"] = {}
        (conf / "origin.yaml").write_text(yaml.safe_dump(origin, sort_keys=False))
        for name in ("router.yaml", "control_plane.yaml"):
            (conf / name).write_text((REPO / "configs" / name).read_text())
        stack = yaml.safe_load(STACK.read_text())
        stack["origin"]["root"] = str(REPO / "examples" / "site")
        stack["mid_tier"]["disk_cache"] = False
        (conf / "stack.yaml").write_text(yaml.safe_dump(stack, sort_keys=False))
        return conf / "stack.yaml"

    def start(self) -> None:
        state = self.run / "state"
        log = self.procs.logs / "cdnctl.log"
        proc = self.procs.start("cdnctl", [
            sys.executable, "-m", "control_plane.cli", "up", "--config", str(self._configs()),
            "--net", self.layout.net], cwd=REPO,
            env={**os.environ, "CDN_STATE_DIR": str(state)})
        deadline = time.monotonic() + START_TIMEOUT
        while not log.exists() or b"stack is up" not in log.read_bytes():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"cdnctl up did not start; see {log}")
            time.sleep(0.2)

    def edges(self) -> DnsEdges:
        r = self.layout.stack.router
        return DnsEdges((r.host, r.port), self.site)

    def cdn_pids(self) -> list[int]:
        # cdnctl up's tree holds every process of the stack; the origin is left out.
        root = self.procs.pid("cdnctl")
        return [p for p in tree(root) if not _is_origin(p)]

    def stop(self) -> None:
        proc = self.procs.started.get("cdnctl")
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does: every node stops cleanly
            # Past 30 s, Procs.stop_all takes the group down.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        super().stop()


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_origin(pid: int) -> bool:
    argv = _argv(pid)
    return "origin" in argv and "-m" in argv


def process_label(pid: int) -> str:
    """A short name for a process of a stack: the node name (``--name``, or varnishd's
    ``-n`` directory), else the module run with ``-m``, else the program."""
    argv = _argv(pid)
    for flag in ("--name", "-n"):
        if flag in argv[:-1]:
            value = argv[argv.index(flag) + 1]
            return Path(value).parent.name if flag == "-n" else value
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return Path(argv[0]).name if argv and argv[0] else str(pid)


class Nginx(Stack):
    name = "nginx"

    def stored_bytes(self) -> int:
        # nginx's cache manager evicts down to max_size in passes at most 10 s apart, so
        # the cache grows past its budget in between: measured, to be reported.
        total = 0
        for n in (*self.layout.stack.edges.nodes, *self.layout.stack.mid_tier.nodes):
            for d, _, files in os.walk(self.run / n.name / "cache"):
                for f in files:
                    with contextlib.suppress(FileNotFoundError):  # evicted meanwhile
                        total += os.stat(os.path.join(d, f)).st_size
        return total

    def _node(self, name: str, host: str, port: int, max_bytes: int,
              upstream: list[tuple[str, int]], hashed: bool) -> None:
        root = self.run / name
        for sub in ("logs", "cache", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        lines = ["        hash $request_uri consistent;"] if hashed else []
        lines += [f"        server {h}:{p} max_fails=0;" for h, p in upstream]
        # nginx sizes are in bytes without a suffix; its cache manager needs at least
        # one file's worth, so a budget under 4 KiB stores nothing at all, as it should.
        (root / "nginx.conf").write_text(_fill(
            "nginx-tier.conf", NAME=name, HOST=host, PORT=port, MAX_BYTES=max_bytes,
            UPSTREAM="\n".join(lines)))
        proc = self.procs.start(name, ["nginx", "-p", str(root), "-c", str(root / "nginx.conf"),
                                       "-e", str(root / "logs" / "error.log")])
        wait_listening(host, port, proc, name)

    def start(self) -> None:
        self._start_origin()
        s = self.layout.stack
        for n in s.mid_tier.nodes:
            self._node(n.name, n.host, n.port, self.budgets.mid_bytes,
                       [(s.origin.host, s.origin.port)], hashed=False)
        mids = [(n.host, n.port) for n in s.mid_tier.nodes]
        for n in s.edges.nodes:
            self._node(n.name, n.host, n.port, self.budgets.edge_bytes, mids, hashed=True)


def _vcl_subs(name: str, storage: int) -> str:
    """``vcl_backend_response``, which stores no object larger than this node's whole
    storage (it gets Transient storage as hit-for-miss instead: without this Varnish
    truncates the response or answers 503 when it cannot make room), and
    ``vcl_deliver``, which appends this node's RFC 9211 Cache-Status member."""
    return f"""sub vcl_backend_response {{
    if (std.integer(beresp.http.Content-Length, 0) > {storage}) {{
        set beresp.uncacheable = true;
        set beresp.ttl = 60s;
        return (deliver);
    }}
}}
sub vcl_deliver {{
    if (obj.hits > 0) {{
        set req.http.X-Member = "{name}; hit";
    }} else {{
        set req.http.X-Member = "{name}; fwd=miss";
    }}
    if (resp.http.Cache-Status) {{
        set resp.http.Cache-Status = resp.http.Cache-Status + ", " + req.http.X-Member;
    }} else {{
        set resp.http.Cache-Status = req.http.X-Member;
    }}
}}"""


VARNISH_MIN_MALLOC = 1 << 20  # varnishd refuses a smaller -s malloc ("too small")


class Varnish(Stack):
    name = "varnish"

    def node_bytes(self) -> tuple[int, int]:
        return (max(self.budgets.edge_bytes, VARNISH_MIN_MALLOC),
                max(self.budgets.mid_bytes, VARNISH_MIN_MALLOC))

    def _node(self, name: str, host: str, port: int, max_bytes: int, vcl: str) -> None:
        root = self.run / name
        root.mkdir(parents=True, exist_ok=True)
        (root / "node.vcl").write_text(vcl)
        proc = self.procs.start(name, [
            "varnishd", "-F", "-n", str(root / "state"), "-a", f"{host}:{port}",
            "-f", str(root / "node.vcl"), "-s", f"malloc,{max_bytes}",
            # nuke_limit: objects evicted to make room for one; the default 50 fails
            # fetches when many small objects must go for a large one.
            "-p", "nuke_limit=100000", "-T", "127.0.0.1:0"])
        wait_listening(host, port, proc, name)

    def start(self) -> None:
        self._start_origin()
        s = self.layout.stack
        edge_bytes, mid_bytes = self.node_bytes()
        for n in s.mid_tier.nodes:
            self._node(n.name, n.host, n.port, mid_bytes, _fill(
                "varnish-mid.vcl", ORIGIN_HOST=s.origin.host, ORIGIN_PORT=s.origin.port,
                SUBS=_vcl_subs(n.name, mid_bytes)))
        backends = "\n".join(
            f'backend {n.name} {{ .host = "{n.host}"; .port = "{n.port}"; }}'
            for n in s.mid_tier.nodes)
        adds = "\n".join(f"    mids.add_backend({n.name});" for n in s.mid_tier.nodes)
        for n in s.edges.nodes:
            self._node(n.name, n.host, n.port, edge_bytes, _fill(
                "varnish-edge.vcl", BACKENDS=backends, ADD_BACKENDS=adds,
                SUBS=_vcl_subs(n.name, edge_bytes)))


STACKS: dict[str, type[Stack]] = {"ours": Ours, "nginx": Nginx, "varnish": Varnish}
