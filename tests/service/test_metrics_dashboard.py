"""The Grafana dashboard and the Prometheus scrape config (issue 11): every metric a panel
queries is one that a node, the router, the origin or the control plane registers; the
panels the issue asks for exist; the scrape targets are the compose services."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from metricsutil import registered_names

from cdn_core.metrics import new_registry
from cdn_core.node.app import Node
from cdn_core.node.settings.node import NodeConfig
from control_plane.app import create_app as create_control_plane
from control_plane.config import ControlPlaneConfig
from origin.app import create_app as create_origin
from origin.config import OriginConfig
from router.app import create_app as create_router
from router.config import RouterConfig

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "configs" / "grafana" / "cdn-dashboard.json"
PROMETHEUS = ROOT / "configs" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges, subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def test_metric_names_parser() -> None:
    expr = ('histogram_quantile(0.99, sum by (tier, le) (rate(cdn_x_bucket{a="b{c}"}[5m]))) '
            '/ on (tier) group_left sum without (le) (cdn_y) > bool 0 and cdn_z offset 1m')
    assert metric_names(expr) == {"cdn_x_bucket", "cdn_y", "cdn_z"}


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def exprs(dash: dict) -> list[str]:
    return [t["expr"] for p in panels(dash) for t in p.get("targets", []) if t.get("expr")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every name the services register (constructed, not started)."""
    tmp = tmp_path_factory.mktemp("names")
    names: set[str] = set()
    for tier in ("edge", "mid"):
        registry = new_registry()
        Node(NodeConfig(tier=tier, name=f"{tier}1", port=0), registry=registry)
        names |= registered_names(registry)
    registry = new_registry()
    create_router(RouterConfig.model_validate({"port": 0, "admin_port": 0}), registry=registry)
    names |= registered_names(registry)
    registry = new_registry()
    create_origin(OriginConfig(root=str(tmp)), registry=registry)
    names |= registered_names(registry)
    registry = new_registry()
    create_control_plane(ControlPlaneConfig(db=str(tmp / "cp.db")), registry=registry)
    names |= registered_names(registry)
    return names


def test_dashboard_queries_only_metrics_that_exist(exported: set[str]) -> None:
    dash = json.loads(DASHBOARD.read_text())
    used = set().union(*(metric_names(e) for e in exprs(dash)))
    assert used, "no queries found"
    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"
    assert all(n.startswith("cdn_") for n in used)


def test_dashboard_has_the_panels_operators_need() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["schemaVersion"] >= 36 and dash["title"]
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))
    text = "\n".join(exprs(dash))
    for needle in (
        'rate(cdn_requests_total{cache_status=~"hit|stale"}',  # hit ratio per tier
        "sum by (tier, cache_status) (rate(cdn_requests_total",  # requests by cache status
        "cdn_response_body_bytes_total",  # bytes
        "histogram_quantile(0.5, sum by (tier, le) (rate(cdn_upstream_fetch_seconds_bucket",
        "histogram_quantile(0.99, sum by (tier, le) (rate(cdn_upstream_fetch_seconds_bucket",
        "cdn_stale_served_total",
        "cdn_purge_latency_seconds_bucket",
        "sum by (edge) (rate(cdn_dns_answers_total",  # DNS answers by edge
        "cdn_refused_total",  # refused clients
        'cdn_ratelimit_decisions_total{outcome="limited"}',
        "cdn_node_health_changes_total",
    ):
        assert needle in text, needle
    # every panel that queries uses the dashboard's data source variable
    for p in panels(dash):
        if p.get("targets"):
            assert p["datasource"]["uid"] == "${datasource}"


def admin_port(command: str) -> str | None:
    m = re.search(r"--admin-port\s+(\d+)", command)
    if m:
        return m.group(1)
    if "control_plane" in command:
        m = re.search(r"--port\s+(\d+)", command)
        return m.group(1) if m else None
    return None


def test_scrape_targets_are_the_compose_services() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    assert {job["job_name"] for job in config["scrape_configs"]} >= {
        "edge", "mid", "origin", "router", "control_plane"}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert any(r["target_label"] == "node" for r in job["relabel_configs"])
    if not COMPOSE.exists():
        pytest.skip("docker-compose.yml not present")
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    expected = set()
    for name, svc in services.items():
        command = svc.get("command")
        if isinstance(command, list):
            command = " ".join(command)
        if not isinstance(command, str) or not command.startswith("python -m"):
            continue
        port = admin_port(command)
        if port is not None:
            expected.add(f"{name}:{port}")
    assert targets == expected
    assert "prometheus.yml" in json.dumps(services.get("prometheus", {}))
