"""Alembic environment: migrations run on the connection :mod:`control_plane.migrate`
passes in (``config.attributes["connection"]``), or on ``sqlalchemy.url`` / ``$CDN_DB``
when Alembic's own command line is used."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

connection = context.config.attributes.get("connection")


def _run(conn: sa.Connection) -> None:
    context.configure(connection=conn, target_metadata=None,
                      render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    from control_plane.db import engine_url

    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("CDN_DB", "")
    sync_url = engine_url(url).set(drivername=engine_url(url).get_backend_name())
    with sa.create_engine(sync_url).connect() as conn:
        _run(conn)
        conn.commit()
