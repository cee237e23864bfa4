"""cdnctl up's supervision: the restart policy (pure, control_plane.supervision) and the
launcher's Supervisor restarting real child processes (short-lived Python children,
health never answered unless told, time passed in by the test)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from control_plane import supervision
from control_plane.launcher import Supervisor
from control_plane.stack import Process

POLICY = supervision.RestartPolicy()


def test_backoff_doubles_from_half_a_second_to_thirty():
    rec = supervision.ChildRecord()
    delays = []
    now = 0.0
    for _ in range(9):
        supervision.started(rec, now)
        supervision.became_healthy(rec)  # it did start; it crashes later
        now += 5.0
        delays.append(supervision.exited(rec, -9, now, POLICY))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_minute_up_resets_the_backoff():
    rec = supervision.ChildRecord()
    for now in (0.0, 10.0, 20.0):
        supervision.started(rec, now)
        supervision.became_healthy(rec)
        supervision.exited(rec, 1, now + 1, POLICY)
    supervision.started(rec, 100.0)
    supervision.became_healthy(rec)
    assert supervision.exited(rec, 1, 161.0, POLICY) == 0.5  # up 61 s: back to the start


def test_five_failed_starts_in_a_row_leave_it_down():
    rec = supervision.ChildRecord()
    results = []
    for i in range(5):
        supervision.started(rec, float(i))
        results.append(supervision.exited(rec, 2, i + 0.1, POLICY))  # never healthy
    assert results[:4] == [0.5, 1.0, 2.0, 4.0] and results[4] is None
    assert rec.given_up and rec.state() == "down"
    # A healthy run in between starts the count again.
    rec = supervision.ChildRecord()
    for i in range(4):
        supervision.started(rec, float(i))
        supervision.exited(rec, 2, i + 0.1, POLICY)
    supervision.started(rec, 10.0)
    supervision.became_healthy(rec)
    assert supervision.exited(rec, 2, 11.0, POLICY) is not None and rec.failed_starts == 0


def _proc(name: str, code: str) -> Process:
    return Process(
        name, "edge", [sys.executable, "-c", code], "http://127.0.0.1:9/healthz",
        "http://127.0.0.1:9", "127.0.0.1", 9, "127.0.0.1:9",
    )


def _wait_exit(sup: Supervisor, name: str) -> None:
    for _ in range(200):  # bounded: a child printing one line exits in well under 10 s
        if sup.children[name].poll() is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not exit")


def test_supervisor_restarts_with_the_count_and_gives_up(tmp_path: Path):
    crash = _proc("edge1", "import os, sys; print('run', os.environ['CDN_RESTARTS']); sys.exit(3)")
    state = tmp_path / "supervisor.json"
    sup = Supervisor([crash], tmp_path / "logs", state_file=state)
    sup.start(crash)
    said: list[str] = []
    now = 1000.0
    try:
        for _ in range(5):
            _wait_exit(sup, "edge1")
            said += sup.supervise(now)  # notices the exit
            now += 60.0  # past any delay
            said += sup.supervise(now)  # restarts it (or has given up)
    finally:
        sup.stop_all()
    log = (tmp_path / "logs" / "edge1.log").read_text()
    assert [line for line in log.splitlines() if line.startswith("run")] == [
        "run 0", "run 1", "run 2", "run 3", "run 4"
    ]
    assert said[0].startswith("edge1 exited with status 3; restarting in 0.5 s")
    assert said[-1].startswith("error: edge1 failed to start 5 times in a row")
    assert "run 4" in said[-1]  # its last log lines are shown
    children = json.loads(state.read_text())["children"]
    assert children["edge1"]["state"] == "down" and children["edge1"]["restarts"] == 4


def test_supervisor_does_not_restart_while_stopping(tmp_path: Path):
    quick = _proc("edge1", "pass")
    sup = Supervisor([quick], tmp_path / "logs")
    sup.start(quick)
    _wait_exit(sup, "edge1")
    sup.stop_all()
    assert sup.supervise(time.monotonic() + 100) == []
    assert sup.records["edge1"].restarts == 0
