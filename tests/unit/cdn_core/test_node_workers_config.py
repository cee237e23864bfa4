"""cdn_core.node.workers: per-worker settings and the refusals of a multi-worker node."""

from __future__ import annotations

import pytest

from cdn_core.errors import ConfigError
from cdn_core.node.settings.node import NodeConfig
from cdn_core.node.workers import check, worker_config


def test_budget_is_split_and_admin_ports_follow_the_default() -> None:
    cfg = NodeConfig(port=8080, cache={"max_bytes": 1000})
    w = [worker_config(cfg, i, 4) for i in range(4)]
    assert [c.cache.max_bytes for c in w] == [250] * 4
    assert [c.admin_address() for c in w] == [("127.0.0.1", 9080 + i) for i in range(4)]
    assert all(c.port == 8080 for c in w)
    assert cfg.cache.max_bytes == 1000  # the original is untouched


def test_explicit_and_ephemeral_admin_ports() -> None:
    cfg = NodeConfig(port=8080, admin_port=7000, admin_host="127.0.0.2")
    assert worker_config(cfg, 1, 2).admin_address() == ("127.0.0.2", 7001)
    cfg = NodeConfig(port=8080, admin_port=0)
    assert worker_config(cfg, 1, 2).admin_address()[1] == 0


def test_disk_tier_gets_a_directory_and_budget_per_worker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = NodeConfig(port=8080, cache={"disk_path": str(tmp_path), "disk_max_bytes": 900})
    c = worker_config(cfg, 2, 3)
    assert c.cache.disk_path == str(tmp_path / "w2")
    assert c.cache.disk_max_bytes == 300


@pytest.mark.parametrize(
    ("settings", "count", "needle"),
    [
        ({"port": 8080}, 0, "at least 1"),
        ({"port": 8080, "control": {"url": "http://127.0.0.1:1"}}, 2, "control plane"),
        ({"port": 0}, 2, "fixed --port"),
    ],
)
def test_refused_settings(settings: dict, count: int, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=needle):
        check(NodeConfig(**settings), count)


def test_one_worker_with_a_control_plane_is_fine() -> None:
    check(NodeConfig(port=8080, control={"url": "http://127.0.0.1:1"}), 1)
