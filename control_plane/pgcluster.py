"""A throwaway PostgreSQL server on a loopback port, for tests, benchmarks and chaos runs.

``PgCluster(root).start()`` runs ``initdb`` into ``root/data`` and starts ``postgres``
listening on ``127.0.0.1:port`` only (no Unix socket outside ``root``), with trust
authentication for the ``postgres`` role and ``fsync`` off (nothing in it outlives the
run). As root, the server runs as the ``postgres`` user (PostgreSQL refuses root), which
Debian's ``postgresql`` package creates. Binaries are found on ``$PATH`` or in Debian's
``/usr/lib/postgresql/<version>/bin``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from cdn_core.errors import StartupError


def pg_bin(name: str) -> str | None:
    """Path of PostgreSQL program ``name`` (initdb, pg_ctl, psql), or None."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    return None


def available() -> bool:
    """True when initdb, pg_ctl and psql can be found."""
    return all(pg_bin(n) for n in ("initdb", "pg_ctl", "psql"))


class PgCluster:
    """One PostgreSQL server in ``root`` on ``host:port`` (see the module docstring)."""

    def __init__(self, root: Path, port: int, host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.data = self.root / "data"
        self.host = host
        self.port = port
        self._user = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, user=self._user, capture_output=True, text=True,
                              check=False, timeout=120)

    def _tool(self, name: str) -> str:
        path = pg_bin(name)
        if path is None:
            raise StartupError(f"PostgreSQL's {name} not found (apt install postgresql)")
        return path

    def start(self) -> None:
        """Create the cluster when missing, then start the server and wait until it accepts
        connections.

        Raises:
            StartupError: a program is missing or fails (with its output).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            shutil.chown(self.root, self._user)
        if not (self.data / "PG_VERSION").exists():
            self._check("initdb", self._run(
                self._tool("initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth=trust", "-E", "UTF8", "--no-sync"))
        self._check("pg_ctl start", self._run(
            self._tool("pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
            "-l", str(self.root / "server.log"), "-o",
            f"-h {self.host} -p {self.port} -k {self.root} -F -c max_connections=200",
            "start"))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate); no error when stopped."""
        self._run(self._tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql; returns its output.

        Raises:
            StartupError: psql fails.
        """
        done = self._run(self._tool("psql"), "-h", self.host, "-p", str(self.port),
                         "-U", "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1",
                         "-c", sql)
        self._check("psql", done)
        return done.stdout

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name unless given); returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @staticmethod
    def _check(what: str, done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip().splitlines()
            raise StartupError(f"{what} failed: {' | '.join(output[-3:])}")
