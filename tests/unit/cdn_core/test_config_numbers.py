"""Numbers in every config model (cdn_core.config.StrictModel): a YAML boolean or a
non-finite float is an error naming the file and the field, not a silent 1 or NaN."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_core.config import load_config
from cdn_core.errors import ConfigError
from cdn_core.node.config import NodeConfig
from control_plane.config import ControlPlaneConfig


@pytest.mark.parametrize(
    ("model", "text", "field", "why"),
    [
        (ControlPlaneConfig, "failover:\n  interval: true\n", "failover.interval", "got true"),
        (ControlPlaneConfig, "failover:\n  interval: .nan\n", "failover.interval", "finite"),
        (NodeConfig, "limits:\n  header_timeout: .inf\n", "limits.header_timeout", "finite"),
        (NodeConfig, "admin_port: false\n", "admin_port", "got false"),  # int | None
        (NodeConfig, "limits:\n  max_headers: true\n", "limits.max_headers", "got true"),
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
