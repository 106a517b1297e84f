"""Chain of custody: audit checkpoints, configuration digests, PII key versions, retention
archives, and each record's source row (sealed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        _ts("created_at"),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
    )
    op.create_table(
        "config_digests",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_config_digests"),
    )
    op.create_table(
        "data_keys",
        sa.Column("version", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        _ts("created_at"),
        _ts("retired_at", nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_data_keys"),
    )
    op.create_table(
        "key_rotations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("progress", sa.Text, nullable=False),
        sa.Column("resealed", sa.Integer, server_default="0", nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_key_rotations"),
    )
    op.create_table(
        "retention_archives",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _ts("cutoff"),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("delete_after"),
        _ts("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_retention_archives"),
        sa.UniqueConstraint("name", name="uq_retention_archives_name"),
    )
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("source_cells", sa.LargeBinary, nullable=True))
    with op.batch_alter_table("record_history") as batch:
        batch.add_column(sa.Column("source_cells", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record_history") as batch:
        batch.drop_column("source_cells")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("source_cells")
    for table in (
        "retention_archives",
        "key_rotations",
        "data_keys",
        "config_digests",
        "audit_checkpoints",
    ):
        op.drop_table(table)
