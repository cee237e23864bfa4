"""Router configuration, flag parsing, and the small pure parsers around the table
(control-plane node lists, edge /status bodies, client prefixes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_core.config import load_config
from cdn_core.errors import ConfigError
from router.__main__ import build_parser, overrides
from router.config import RouterConfig, parse_edge_flag
from router.control import merge_edges, parse_nodes
from router.ecs import EcsError, PrefixPolicy, encode_ecs, parse_ecs
from router.health import parse_status
from router.table import EdgeSpec

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_yaml_equals_the_defaults() -> None:
    assert load_config(RouterConfig, ROOT / "configs" / "router.yaml") == RouterConfig()


def test_stack_flags_override_the_file() -> None:
    args = build_parser().parse_args(
        ["--config", "configs/router.yaml", "--host", "127.0.0.1", "--port", "5353",
         "--admin-port", "19053", "--edge", "edge1=127.0.1.1:8080:9080",
         "--edge", "edge6=[::1]:8080:9081", "--control-plane", "http://127.0.0.1:9000"]
    )  # fmt: skip
    cfg = load_config(RouterConfig, ROOT / "configs" / "router.yaml", overrides(args))
    assert [(e.name, e.address, e.probe_base()) for e in cfg.edges] == [
        ("edge1", "127.0.1.1", "http://127.0.1.1:9080"),
        ("edge6", "::1", "http://[::1]:9081"),
    ]
    assert cfg.control_plane.url == "http://127.0.0.1:9000"
    assert cfg.port == 5353 and cfg.admin_address() == ("127.0.0.1", 19053)


@pytest.mark.parametrize("flag", ["edge1", "edge1=1.2.3.4:80", "=1.2.3.4:1:2", "e=::1:1:2"])
def test_bad_edge_flags(flag: str) -> None:
    with pytest.raises(ConfigError, match="--edge"):
        parse_edge_flag(flag)


def test_errors_name_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "r.yaml"
    cfg.write_text("load:\n  high_in_flight: 10\n  low_in_flight: 20\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: load: .*low_in_flight"):
        load_config(RouterConfig, cfg)
    cfg.write_text("zones:\n  - name: example.test\n    services: [www.other.test]\n")
    with pytest.raises(ConfigError, match=r"zones\.0: .*outside zone"):
        load_config(RouterConfig, cfg)
    cfg.write_text("edges:\n  - {name: e1, address: not-an-ip}\n")
    with pytest.raises(ConfigError, match=r"edges\.0\.address"):
        load_config(RouterConfig, cfg)
    cfg.write_text("answer_ttl: 3\n")
    with pytest.raises(ConfigError, match="answer_ttl"):
        load_config(RouterConfig, cfg)


def test_domain_names_are_normalised() -> None:
    cfg = RouterConfig.model_validate(
        {"zones": [{"name": "Example.TEST.", "services": ["WWW.example.test"]}]}
    )
    assert cfg.zones[0].name == "example.test" and cfg.zones[0].services == ["www.example.test"]


def test_control_plane_nodes_keep_usable_edges_only() -> None:
    body = {
        "nodes": [
            {"name": "edge1", "tier": "edge", "host": "127.0.1.1", "port": 8080,
             "admin_url": "http://127.0.1.1:9080/"},
            {"name": "mid1", "tier": "mid", "host": "127.0.0.1", "port": 18201,
             "admin_url": "http://127.0.0.1:19201"},
            {"name": "named", "tier": "edge", "host": "edge.local", "port": 8080,
             "admin_url": "http://edge.local:9080"},
            {"name": "noadmin", "tier": "edge", "host": "127.0.1.9", "port": 8080},
            "junk",
        ]
    }  # fmt: skip
    (edge,) = parse_nodes(body)
    assert edge == EdgeSpec("edge1", "127.0.1.1", 8080, "http://127.0.1.1:9080", "control-plane")
    with pytest.raises(ValueError):
        parse_nodes({"nodes": "x"})
    static = [EdgeSpec("edge1", "127.0.1.1", 8080, "http://127.0.1.1:9080")]
    other = EdgeSpec("edge9", "127.0.1.9", 8080, "http://x:1", "control-plane")
    assert merge_edges(static, [edge, other]) == [static[0], other]


def test_status_parsing_is_lenient() -> None:
    assert parse_status({"in_flight": 3, "cpu_seconds": 12.5}) == (3, 12.5)
    assert parse_status({"in_flight": True, "cpu_seconds": "x"}) == (None, None)
    assert parse_status({"in_flight": float("inf"), "cpu_seconds": -1}) == (None, None)
    assert parse_status([]) == (None, None)


def test_prefixes_and_ecs_codec() -> None:
    p = PrefixPolicy(24, 56)
    key = p.parse_prefix("203.0.113.77/32")
    assert p.format(key) == "203.0.113.0/24" == p.format(p.key_for_text("203.0.113.9"))
    assert p.key_for_text("::ffff:203.0.113.1") == key  # IPv4-mapped counts as IPv4
    assert p.format(p.key_for_text("2001:db8:0:1234::1")) == "2001:db8:0:1200::/56"
    with pytest.raises(ValueError):
        p.parse_prefix("203.0.0.0/16")  # covers many of our prefixes
    subnet = parse_ecs(encode_ecs("203.0.113.0/24"))
    assert p.key_for_subnet(subnet) == key
    assert subnet.response_option(24) == bytes.fromhex("00011818cb0071")
    for bad in ("0003180000", "00012100cb007100aa", "0001"):
        with pytest.raises(EcsError):
            parse_ecs(bytes.fromhex(bad))


def test_errors_name_the_source_that_gave_the_bad_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "r.yaml"
    cfg.write_text("health:\n  fall: 2\n")
    monkeypatch.setenv("CDN_ROUTER__HEALTH__FALL", "0")
    with pytest.raises(ConfigError, match=r"^\$CDN_ROUTER__HEALTH__FALL: health\.fall: "):
        load_config(RouterConfig, cfg, env_prefix="CDN_ROUTER")
    monkeypatch.delenv("CDN_ROUTER__HEALTH__FALL")
    with pytest.raises(ConfigError, match=r"^<flags>: port: "):
        load_config(RouterConfig, cfg, {"port": -5}, env_prefix="CDN_ROUTER")
    cfg.write_text("health:\n  fall: 0\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: health\.fall: "):
        load_config(RouterConfig, cfg, {"port": 53}, env_prefix="CDN_ROUTER")
