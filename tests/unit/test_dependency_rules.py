"""The dependency rules of ARCHITECTURE.md ("Dependency rules"), checked on the source.

Imports are read with :mod:`ast` (nothing is imported), module-level ones including those
under ``if TYPE_CHECKING:``; imports inside functions are deliberate lazy imports and
count only for the rules about what a package may import, not for circles. Each rule is
a function from the import graph to a list of violations, so the checker itself is tested
on a small hand-made tree and can be seen to fail.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("edge", "mid_tier", "origin", "router", "control_plane")
PACKAGES = ("cdn_core", *SERVICES, "bench")
# A service may import another service's module only when it is one of these public ones.
PUBLIC = frozenset({"control_plane.cli.common"})
# cdn_core.node sub-packages, lowest first; each imports only earlier layers (and its own
# sub-package). Sub-packages in one layer do not import each other.
NODE_LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"settings"}),
    frozenset({"exchange"}),
    frozenset({"wire", "observe"}),
    frozenset({"filling"}),
    frozenset({"proxy"}),
    frozenset({"policy"}),
    frozenset({"control"}),
    frozenset({"app"}),
    frozenset({"workers"}),
    frozenset({"cli"}),
)
# What pure caching logic must never touch: event loops, sockets, files, HTTP clients.
IO_MODULES = frozenset(
    {"asyncio", "aiohttp", "socket", "ssl", "selectors", "threading", "subprocess", "os",
     "io", "pathlib", "logging", "urllib", "http", "uvloop", "httptools", "aiosqlite",
     "redis", "sqlite3", "shutil", "tempfile"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # importing module
    target: str  # imported module (resolved; ``from a import b`` adds ``a.b`` if a module)
    line: int
    lazy: bool  # inside a function


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def scan(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, list[Import]]:
    """Every module of ``packages`` under ``root`` (by name) and its imports."""
    files = {
        module_name(root, p): p for pkg in packages if (root / pkg).is_dir()
        for p in sorted((root / pkg).rglob("*.py"))
    }  # fmt: skip
    return {name: _imports(name, files[name], files) for name in sorted(files)}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    out: list[Import] = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True)
            elif isinstance(child, ast.Import):
                out.extend(Import(name, a.name, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*parts, *([child.module] if child.module else [])])
                # ``from a import b``: the module a.b when b is one, else a itself.
                targets = {
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in child.names
                }
                out.extend(Import(name, t, child.lineno, lazy) for t in sorted(targets))
            else:
                visit(child, lazy)

    visit(ast.parse(path.read_text(), str(path)), False)
    return out


def _top(module: str) -> str:
    return module.partition(".")[0]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# -- the rules -------------------------------------------------------------------------
def core_imports_no_service(graph: dict[str, list[Import]]) -> list[str]:
    """``cdn_core`` is the shared library: it imports no service, bench or test code."""
    return [
        f"{i.source}:{i.line} imports {i.target}"
        for imps in graph.values()
        for i in imps
        if _within(i.source, "cdn_core") and _top(i.target) in (*SERVICES, "bench", "tests")
    ]


def http_cache_is_pure(graph: dict[str, list[Import]]) -> list[str]:
    """``cdn_core.http_cache`` does no I/O, imports no third-party library and nothing of
    ``cdn_core`` outside itself."""
    bad = []
    for imps in graph.values():
        for i in imps:
            if not _within(i.source, "cdn_core.http_cache") or not i.target:
                continue
            top = _top(i.target)
            own = _within(i.target, "cdn_core.http_cache")
            third_party = top not in sys.stdlib_module_names and top != "cdn_core"
            if top in IO_MODULES or third_party or (top == "cdn_core" and not own):
                bad.append(f"{i.source}:{i.line} imports {i.target}")
    return bad


def libraries_below_node(graph: dict[str, list[Import]]) -> list[str]:
    """The libraries beside the node runtime (store, optimize, http_cache, heads, ...)
    are used by it and never use it."""
    return [
        f"{i.source}:{i.line} imports {i.target}"
        for imps in graph.values()
        for i in imps
        if _within(i.source, "cdn_core")
        and not _within(i.source, "cdn_core.node")
        and _within(i.target, "cdn_core.node")
    ]


def node_layers(graph: dict[str, list[Import]]) -> list[str]:
    """Each ``cdn_core.node`` sub-package imports only the layers below it."""
    rank = {sub: n for n, layer in enumerate(NODE_LAYERS) for sub in layer}
    bad = []
    for imps in graph.values():
        for i in imps:
            if not (_within(i.source, "cdn_core.node") and _within(i.target, "cdn_core.node")):
                continue
            src, dst = i.source.split(".")[2:3], i.target.split(".")[2:3]
            if not src or not dst or src == dst:
                continue
            a, b = src[0], dst[0]
            if a not in rank or b not in rank:
                bad.append(f"{i.source}: cdn_core.node.{a if a not in rank else b} has no layer")
            elif rank[b] >= rank[a]:
                bad.append(f"{i.source}:{i.line} imports {i.target} (layer {a} <= {b})")
    return bad


def services_import_only_core(graph: dict[str, list[Import]]) -> list[str]:
    """A service imports ``cdn_core``, itself, and of other services only :data:`PUBLIC`
    modules (``bench`` measures everything and may import anything)."""
    bad = []
    for imps in graph.values():
        for i in imps:
            src, dst = _top(i.source), _top(i.target)
            if src not in SERVICES or dst not in SERVICES or src == dst:
                continue
            if i.target not in PUBLIC:
                bad.append(f"{i.source}:{i.line} imports {i.target}")
    return bad


def no_import_cycles(graph: dict[str, list[Import]]) -> list[str]:
    """No circle of module-level imports (Tarjan's strongly connected components)."""
    edges = {
        m: sorted({i.target for i in imps if not i.lazy and i.target in graph and i.target != m})
        for m, imps in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[str] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(" <-> ".join(sorted(component)))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(edges):
            if v not in index:
                connect(v)
    finally:
        sys.setrecursionlimit(limit)
    return cycles


RULES = (
    core_imports_no_service,
    http_cache_is_pure,
    libraries_below_node,
    node_layers,
    services_import_only_core,
    no_import_cycles,
)


# -- the project obeys them ------------------------------------------------------------
def test_the_scan_sees_the_whole_tree() -> None:
    graph = scan(ROOT)
    assert {"cdn_core.node.proxy.handler", "router.resolver", "control_plane.cli.main"} <= set(
        graph
    )
    assert any(i.target == "cdn_core.node.control.sync" for i in graph["cdn_core.node.app"])


def test_every_node_subpackage_has_a_layer() -> None:
    subs = {p.stem if p.is_file() else p.name for p in (ROOT / "cdn_core/node").iterdir()}
    subs -= {"__init__", "__pycache__"}
    assert subs == set().union(*NODE_LAYERS)


def test_the_project_obeys_every_dependency_rule() -> None:
    graph = scan(ROOT)
    broken = [f"{rule.__name__}: {v}" for rule in RULES for v in rule(graph)]
    assert not broken, "dependency rules broken (ARCHITECTURE.md):\n" + "\n".join(broken)


# -- and the checker catches what breaks them -----------------------------------------
def _tree(root: Path, files: dict[str, str]) -> dict[str, list[Import]]:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return scan(root)


def test_each_rule_reports_a_forbidden_import(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "cdn_core/__init__.py": "",
            "cdn_core/heads.py": "from cdn_core.node.wire import http1\n",
            "cdn_core/http_cache/__init__.py": "import asyncio\nimport aiohttp\n",
            "cdn_core/http_cache/vary.py": "from cdn_core.store import entry\n",
            "cdn_core/store/__init__.py": "",
            "cdn_core/store/entry.py": "from router import resolver\n",
            "cdn_core/node/__init__.py": "",
            "cdn_core/node/settings/__init__.py": "",
            "cdn_core/node/settings/edge.py": "from cdn_core.node.proxy import handler\n",
            "cdn_core/node/proxy/__init__.py": "",
            "cdn_core/node/proxy/handler.py": "from ..settings import edge\n",
            "cdn_core/node/wire/__init__.py": "",
            "cdn_core/node/wire/http1.py": "from cdn_core.node.observe import log\n",
            "cdn_core/node/observe/__init__.py": "",
            "cdn_core/node/observe/log.py": "",
            "router/__init__.py": "",
            "router/resolver.py": "from control_plane.cli import common, main\n",
            "control_plane/__init__.py": "",
            "control_plane/cli/__init__.py": "",
            "control_plane/cli/common.py": "",
            "control_plane/cli/main.py": "def f():\n    from router import resolver\n",
        },
    )
    assert core_imports_no_service(graph) == ["cdn_core.store.entry:1 imports router.resolver"]
    assert http_cache_is_pure(graph) == [
        "cdn_core.http_cache:1 imports asyncio",
        "cdn_core.http_cache:2 imports aiohttp",
        "cdn_core.http_cache.vary:1 imports cdn_core.store.entry",
    ]
    assert libraries_below_node(graph) == ["cdn_core.heads:1 imports cdn_core.node.wire.http1"]
    assert node_layers(graph) == [
        "cdn_core.node.settings.edge:1 imports cdn_core.node.proxy.handler"
        " (layer settings <= proxy)",
        "cdn_core.node.wire.http1:1 imports cdn_core.node.observe.log (layer wire <= observe)",
    ]
    # common is public; main is not; a lazy import still counts here.
    assert services_import_only_core(graph) == [
        "control_plane.cli.main:2 imports router.resolver",
        "router.resolver:1 imports control_plane.cli.main",
    ]
    # settings.edge -> proxy.handler -> settings.edge (relative import resolved); the
    # lazy import of router.resolver in main makes no circle.
    assert no_import_cycles(graph) == [
        "cdn_core.node.proxy.handler <-> cdn_core.node.settings.edge"
    ]
