"""Config errors (cdn_core.config) name the source and the field: a YAML boolean or a
non-finite float given for a number (not a silent 1 or NaN), a repeated key (not a silent
last-one-wins), a check across fields, a scalar where a section belongs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_core.config import load_config
from cdn_core.errors import ConfigError
from cdn_core.node.settings.node import NodeConfig
from control_plane.config import ControlPlaneConfig


@pytest.mark.parametrize(
    ("model", "text", "field", "why"),
    [
        (ControlPlaneConfig, "failover:\n  interval: true\n", "failover.interval", "got true"),
        (ControlPlaneConfig, "failover:\n  interval: .nan\n", "failover.interval", "finite"),
        (NodeConfig, "limits:\n  header_timeout: .inf\n", "limits.header_timeout", "finite"),
        (NodeConfig, "admin_port: false\n", "admin_port", "got false"),  # int | None
        (NodeConfig, "limits:\n  max_headers: true\n", "limits.max_headers", "got true"),
        # RFC 9000 14: QUIC needs datagrams of at least 1200 bytes
        (NodeConfig, "tls:\n  h3_max_datagram_size: 1000\n", "tls.h3_max_datagram_size",
         "1200"),
        (NodeConfig, "gc_full_interval: -5\n", "gc_full_interval", "greater than or equal"),
    ],
)
def test_booleans_and_non_finite_numbers_are_refused(
    tmp_path: Path, model: type, text: str, field: str, why: str
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=rf"c\.yaml: {field}: .*{why}"):
        load_config(model, cfg)


def test_booleans_still_configure_boolean_fields(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("optimize:\n  enabled: false\nlimits:\n  header_timeout: 2\n")
    loaded = load_config(NodeConfig, cfg)
    assert loaded.optimize.enabled is False and loaded.limits.header_timeout == 2.0


def test_a_repeated_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("limits:\n  max_headers: 10\nname: a\nlimits:\n  max_headers: 20\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML \(line 4, .*duplicate key 'limits'"):
        load_config(NodeConfig, cfg)
    cfg.write_text("a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n")  # merge keys still work
    from cdn_core.config import read_yaml

    assert read_yaml(cfg) == {"a": {"b": 1}, "c": {"b": 1, "d": 2}}


def test_cross_field_errors_name_the_field_and_the_source_that_gave_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("port: 28904\nadmin_port: 28904\n")
    with pytest.raises(ConfigError, match=r"^\S*c\.yaml: admin_port: 28904 is also the data port"):
        load_config(NodeConfig, cfg, {"tier": "edge"})
    with pytest.raises(ConfigError, match=r"^<flags>: admin_port: 28905 is also"):
        load_config(NodeConfig, cfg, {"port": 28905, "admin_port": 28905})


def test_a_scalar_where_a_section_belongs(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("limits: 5\n")
    with pytest.raises(ConfigError, match=r"limits: expected a mapping of settings, got int$"):
        load_config(NodeConfig, cfg)


def test_merge_keys_may_override_what_they_merge(tmp_path: Path) -> None:
    from cdn_core.config import read_yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text("a: &x {t: 5.0, u: 1}\nb: {<<: *x, t: 10.0}\nc: {<<: [*x, {t: 9}], v: 2}\n")
    assert read_yaml(cfg) == {"a": {"t": 5.0, "u": 1}, "b": {"t": 10.0, "u": 1},
                              "c": {"t": 5.0, "u": 1, "v": 2}}  # fmt: skip


@pytest.mark.parametrize("section", ["cache", "upstream", "control", "limits"])
def test_a_scalar_section_is_named_even_when_flags_fill_that_section(
    tmp_path: Path, section: str
) -> None:
    # The node's CLI passes every flag section, all None when not given; a flag that is
    # given must not hide the file's scalar either.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"{section}: 5\n")
    flags = {"cache": {"max_bytes": None}, "upstream": {"urls": ["http://127.0.0.1:1"]},
             "control": {"url": None}}  # fmt: skip
    with pytest.raises(ConfigError, match=rf"c\.yaml: {section}: expected a mapping"):
        load_config(NodeConfig, cfg, flags)
    cfg.write_text(f"{section}:\n")  # empty: an error unless a flag gives the section
    if section == "upstream":
        assert load_config(NodeConfig, cfg, flags).upstream.urls == ["http://127.0.0.1:1"]
    else:
        with pytest.raises(ConfigError, match=rf"c\.yaml: {section}: .*got nothing"):
            load_config(NodeConfig, cfg, flags)
