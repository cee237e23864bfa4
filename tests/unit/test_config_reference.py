"""docs/configuration.md is what the models say, and every setting has a description
(``python -m tools.config_reference --check``, as CI runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current_and_complete():
    out = subprocess.run([sys.executable, "-m", "tools.config_reference", "--check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_reference_names_every_shipped_setting():
    import yaml

    from tools.config_reference import _flatten

    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in ("edge.yaml", "origin.yaml", "router.yaml", "control_plane.yaml", "stack.yaml"):
        data = yaml.safe_load((ROOT / "configs" / name).read_text())
        for key in _flatten(data):  # a list (zones, nodes, cache_rules) is one row
            assert f"`{key}`" in text, (name, key)
