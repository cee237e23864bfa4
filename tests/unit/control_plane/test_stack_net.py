"""Moving the one-host stack to another loopback network (``cdnctl up --net``), where its
state goes (``--state-dir`` and the defaults), and picking a free network."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from cdn_core.shipped import config_file, example_site, shipped
from control_plane.netcheck import free_net
from control_plane.stack import listeners, load_stack, on_net, parse_net, state_dir

ROOT = Path(__file__).resolve().parents[3]


def shipped_stack():
    return load_stack(ROOT / "configs" / "stack.yaml")


def test_on_net_moves_every_address_and_keeps_ports():
    stack, _ = shipped_stack()
    moved = on_net(stack, "127.0.5")
    before, after = listeners(stack), listeners(moved)
    assert [(w, p, k) for w, _, p, k in before] == [(w, p, k) for w, _, p, k in after]
    assert {h for _, h, _, _ in after} == {"127.0.5.1", "127.0.5.2", "127.0.5.3", "127.0.5.4"}
    assert moved.origin.host == moved.control_plane.host == "127.0.5.1"
    assert [n.host for n in moved.edges.nodes] == ["127.0.5.2", "127.0.5.3", "127.0.5.4"]
    assert not {(h, p) for _, h, p, _ in before} & {(h, p) for _, h, p, _ in after}
    assert stack.origin.host == "127.0.0.1"  # the original is left as it was


@pytest.mark.parametrize("bad", ["10.0.5", "127.0.256", "127.0", "127.0.5.1", "localhost"])
def test_parse_net_rejects_what_is_not_a_loopback_24(bad):
    with pytest.raises(ValueError, match="127.X.Y"):
        parse_net(bad)


def test_state_dir_order_flag_env_file_xdg_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stack, base = shipped_stack()
    assert stack.state_dir is None  # the shipped file leaves it to the command
    env = {"CDN_STATE_DIR": "/srv/cdn", "XDG_STATE_HOME": "/home/u/.local/state"}
    assert state_dir(stack, base, "/x", env) == Path("/x")
    assert state_dir(stack, base, None, env) == Path("/srv/cdn")
    pinned = stack.model_copy(update={"state_dir": "state"})
    assert state_dir(pinned, base, None, {"XDG_STATE_HOME": "/s"}) == base / "state"
    assert state_dir(stack, base, None, {"XDG_STATE_HOME": "/s"}) == Path("/s/tiered-cdn")
    assert state_dir(stack, base, None, {}) == tmp_path / "run"
    # a second stack on another network never shares the first one's database
    assert state_dir(stack, base, None, {}, "127.0.5") == tmp_path / "run" / "net-127.0.5"


def test_free_net_skips_a_network_in_use():
    stack, _ = shipped_stack()
    first = free_net(stack, random.Random(7))
    host, port = listeners(on_net(stack, first))[0][1:3]
    with socket.socket() as s:
        s.bind((host, port))
        s.listen()
        assert free_net(stack, random.Random(7)) != first


def test_shipped_files_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./configs here: the package's own copy is used
    assert config_file("stack.yaml") == shipped("configs/stack.yaml")
    assert (example_site() / "index.html").is_file()
    stack, base = load_stack(config_file("stack.yaml"))
    assert (base / stack.origin.root / "index.html").is_file()
