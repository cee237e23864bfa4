"""bench/run.sh's options are checked before anything starts (bench.perf.__main__)."""

from __future__ import annotations

import pytest

from bench.perf.__main__ import parse_args


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "2k"], "2k: sizes are 1k,100k,1m"),
        (["--sizes", ","], "none given"),
        (["--duration", "-1"], "at least 1"),
        (["--rounds", "0"], "at least 1"),
        (["--workers", "-1"], "0 to 64"),
        (["--workers", "1000"], "0 to 64"),
        (["--max-seconds", "0"], "at least 1"),
    ],
)
def test_bad_options_are_refused_by_name(argv, message, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_good_options() -> None:
    a = parse_args(["--sizes", "1k,1m", "--workers", "0", "--rounds", "2"])
    assert a.sizes == ["1k", "1m"] and a.workers == 0 and a.rounds == 2
    assert parse_args([]).sizes == ["1k", "100k", "1m"]
