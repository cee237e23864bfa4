"""Several replicas: the purge seq counter, the replica registry and the leader lease.

Purge seqs come from the setting ``purge_seq``, bumped inside each purge's write
transaction (writes are serialised, see control_plane.db), so seqs are unique, never
reused and committed in order on every engine; it starts at the highest seq already
given.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("term", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO settings (name, value) SELECT 'purge_seq',"
        " CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM purges")


def downgrade() -> None:
    op.execute("DELETE FROM settings WHERE name = 'purge_seq'")
    op.drop_table("leases")
    op.drop_table("replicas")
