"""Baseline: nodes, purges and acks, API keys, rate-limit policies, settings, services.

Tables are created only where missing, and columns added since the first release are
added where missing, so a database made before migrations existed is adopted as is.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Timestamps are Unix seconds; DOUBLE (never PostgreSQL's 4-byte REAL) keeps microseconds.
_TIME = sa.Double


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("admin_url", sa.Text, nullable=False),
        sa.Column("registered_at", _TIME, nullable=False),
        sa.Column("last_seen", _TIME),
        sa.Column("purge_seq", sa.Integer),
        sa.CheckConstraint("tier IN ('edge', 'mid', 'origin', 'router')", name="nodes_tier"),
        if_not_exists=True,
    )
    op.create_table(
        "purges",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("soft", sa.Integer, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("completed_at", _TIME),
        if_not_exists=True,
    )
    op.create_table(
        "purge_acks",
        sa.Column("purge_id", sa.Text, sa.ForeignKey("purges.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("purged", sa.Integer),
        sa.Column("acked_at", _TIME),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("purge_id", "node"),
        sa.CheckConstraint("state IN ('pending', 'acked', 'failed')", name="purge_acks_state"),
        if_not_exists=True,
    )
    op.create_index("purges_open", "purges", ["seq"], if_not_exists=True,
                    sqlite_where=sa.text("completed_at IS NULL"),
                    postgresql_where=sa.text("completed_at IS NULL"))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME),
        sa.Column("services", sa.Text),  # JSON list: the key is limited to them
        sa.CheckConstraint("role IN ('admin', 'purger', 'reader')", name="api_keys_role"),
        if_not_exists=True,
    )
    op.create_table(
        "ratelimits",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "settings",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "services",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("active_version", sa.Integer),
        sa.Column("previous_version", sa.Integer),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("activated_at", _TIME),
        sa.Column("deleted_at", _TIME),
        if_not_exists=True,
    )
    op.create_table(
        "service_versions",
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("service", "version"),
        if_not_exists=True,
    )
    op.create_table(
        "node_services",
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("node", "service"),
        if_not_exists=True,
    )
    # Files written before these columns existed (SQLite cannot ADD COLUMN IF NOT EXISTS).
    inspector = sa.inspect(op.get_bind())
    for table, column, kind in (("nodes", "last_seen", _TIME), ("nodes", "purge_seq", sa.Integer),
                                ("api_keys", "services", sa.Text)):
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, sa.Column(column, kind))


def downgrade() -> None:
    for table in ("node_services", "service_versions", "services", "settings", "ratelimits",
                  "api_keys", "purge_acks", "purges", "nodes"):
        op.drop_table(table)
