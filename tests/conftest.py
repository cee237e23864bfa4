"""Fixtures every test directory shares: the control plane's database on both engines.

``cp_db`` is the database target a control-plane test uses, once on SQLite (a file in
the test's temp dir) and once on PostgreSQL (a fresh database on one throwaway server
per test session, :class:`control_plane.pgcluster.PgCluster`). ``.ci/run`` installs
PostgreSQL, so neither is ever skipped there; without it on a developer's machine the
PostgreSQL half fails with the reason.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.pgcluster import PgCluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL server for the whole session, on a free loopback port (its directory
    is outside pytest's root-only temp tree: the server may run as ``postgres``)."""
    root = Path(tempfile.mkdtemp(prefix="cdn-pg-"))
    cluster = PgCluster(root, _free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# Databases of finished tests, dropped at the next test's setup: a test's own fixtures
# (its app, its client) may be torn down after this one's, still connected.
_DONE: list[str] = []


@pytest.fixture(params=["sqlite", "postgresql"])
def cp_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The control plane's database target: a SQLite file, or a fresh PostgreSQL URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "control.db")
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    while _DONE:
        cluster.drop_database(_DONE.pop())
    url = cluster.create_database()
    yield url
    _DONE.append(url.rsplit("/", 1)[1])
