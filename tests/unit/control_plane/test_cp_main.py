"""``python -m control_plane`` entry point: config errors and bind errors are one line,
exit 2 (run in-process; the service stops before serving)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from control_plane.__main__ import main


def test_bad_config_names_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "cp.yaml"
    cfg.write_text("purge:\n  node_timeout: soon\n")
    assert main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(cfg) in err and "purge.node_timeout" in err


def test_unknown_key_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cp.yaml"
    cfg.write_text("prot: 9000\n")
    assert main(["--config", str(cfg)]) == 2
    assert "prot" in capsys.readouterr().err


def test_shipped_config_loads() -> None:
    from cdn_core.config import load_config
    from control_plane.config import ControlPlaneConfig

    root = Path(__file__).resolve().parents[3]
    config = load_config(ControlPlaneConfig, root / "configs" / "control_plane.yaml")
    assert config.port == 9000 and config.purge.node_timeout == 2.0


def test_port_in_use_names_the_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["--port", str(port), "--db", str(tmp_path / "c.db"), "--log-level", "ERROR"])
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in capsys.readouterr().err
