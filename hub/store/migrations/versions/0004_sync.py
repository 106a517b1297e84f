"""Sync: source pages and positions, upstream keys and deletions, job state and runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sync_pages",
        sa.Column("batch_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("position", sa.Text, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_sync_pages_batch_id_batches"
        ),
        sa.PrimaryKeyConstraint("batch_id", name="pk_sync_pages"),
    )
    op.create_index("ix_sync_pages_source_batch_id", "sync_pages", ["source", "batch_id"])
    op.create_table(
        "sync_keys",
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("key", sa.BigInteger, autoincrement=False, nullable=False),
        _ts("seen_at"),
        _ts("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("source", "key", name="pk_sync_keys"),
    )
    op.create_table(
        "sync_deletions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("locator", sa.String(255), nullable=False),
        sa.Column("key", sa.BigInteger, nullable=False),
        sa.Column("via", sa.String(20), nullable=False),
        _ts("detected_at"),
        sa.PrimaryKeyConstraint("id", name="pk_sync_deletions"),
    )
    op.create_index("ix_sync_deletions_source_key", "sync_deletions", ["source", "key"])
    op.create_table(
        "job_state",
        sa.Column("job", sa.String(120), nullable=False),
        _ts("last_tick", nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("job", name="pk_job_state"),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("job", sa.String(120), nullable=False),
        _ts("tick", nullable=True),
        sa.Column("process", sa.String(120), nullable=False),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("rows", sa.Integer, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
    )
    op.create_index("ix_job_runs_job_id", "job_runs", ["job", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_job_id", table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_table("job_state")
    op.drop_index("ix_sync_deletions_source_key", table_name="sync_deletions")
    op.drop_table("sync_deletions")
    op.drop_table("sync_keys")
    op.drop_index("ix_sync_pages_source_batch_id", table_name="sync_pages")
    op.drop_table("sync_pages")
