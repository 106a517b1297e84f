"""API: users, clients, signing keys, idempotency answers, uploaded files, statistics.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("wilayah", sa.String(13), nullable=False),
        sa.Column("disabled", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("failed_logins", sa.Integer, server_default="0", nullable=False),
        _ts("locked_until", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("wilayah", sa.String(13), nullable=False),
        _ts("revoked_at", nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_api_clients"),
        sa.UniqueConstraint("client_id", name="uq_api_clients_client_id"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(10), nullable=False),
        sa.Column("private_jwk", sa.LargeBinary, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("retired_at", nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("principal", sa.String(120), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("principal", "key", name="pk_api_idempotency"),
    )
    op.create_table(
        "batch_files",
        sa.Column("batch_id", sa.Integer, nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_batch_files_batch_id_batches"
        ),
        sa.PrimaryKeyConstraint("batch_id", name="pk_batch_files"),
    )
    op.create_table(
        "record_counts",
        sa.Column("record_type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("kode_wilayah", sa.String(13), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "record_type", "status", "kode_wilayah", "month", name="pk_record_counts"
        ),
    )
    # Records held before this revision are counted once, here.
    op.execute(
        "INSERT INTO record_counts (record_type, status, kode_wilayah, month, count) "
        "SELECT record_type, status, kode_wilayah, COALESCE(SUBSTR(event_date, 1, 7), ''), "
        "COUNT(*) FROM records GROUP BY 1, 2, 3, 4"
    )


def downgrade() -> None:
    for table in (
        "record_counts",
        "batch_files",
        "api_idempotency",
        "signing_keys",
        "api_clients",
        "users",
    ):
        op.drop_table(table)
