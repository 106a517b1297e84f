"""Delivery: route position on records, the outbox as the dispatcher needs it, verifier
answer cache, connector state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

The 0001 outbox was never written to, so it is replaced rather than altered (SQLite cannot
alter constraints in place).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("route", sa.String(60), nullable=True))
        batch.add_column(sa.Column("step", sa.Integer, nullable=True))
        batch.add_column(sa.Column("flags", sa.Text, nullable=True))
        batch.add_column(sa.Column("reason", sa.Text, nullable=True))

    op.drop_index("ix_outbox_due", "outbox")
    op.drop_index("ix_outbox_record_id", "outbox")
    op.drop_table("outbox")
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("record_version", sa.Integer, nullable=False),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("correction", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("group_key", sa.LargeBinary(32), nullable=True),
        sa.Column("event_key", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, server_default="0", nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until", nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("last_code", sa.String(20), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("done_at", nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], name="fk_outbox_record_id_records"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint(
            "connector", "idempotency_key", name="uq_outbox_connector_idempotency_key"
        ),
    )
    op.create_index("ix_outbox_due", "outbox", ["connector", "status", "next_attempt_at"])
    op.create_index("ix_outbox_record_id", "outbox", ["record_id"])
    op.create_index("ix_outbox_event_key", "outbox", ["event_key"])

    op.create_table(
        "verify_cache",
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("request_bi", sa.LargeBinary(32), nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("connector", "request_bi", name="pk_verify_cache"),
    )
    op.create_table(
        "connector_state",
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        _ts("paused_until", nullable=True),
        sa.Column("quota_left", sa.Integer, nullable=True),
        _ts("quota_resets_at", nullable=True),
        sa.Column("breaker", sa.Text, nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("connector", name="pk_connector_state"),
    )


def downgrade() -> None:
    op.drop_table("connector_state")
    op.drop_table("verify_cache")
    op.drop_index("ix_outbox_event_key", "outbox")
    op.drop_index("ix_outbox_record_id", "outbox")
    op.drop_index("ix_outbox_due", "outbox")
    op.drop_table("outbox")
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("record_version", sa.Integer, nullable=False),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, server_default="0", nullable=False),
        _ts("next_attempt_at"),
        sa.Column("last_error", sa.Text, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], name="fk_outbox_record_id_records"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint(
            "connector", "idempotency_key", name="uq_outbox_connector_idempotency_key"
        ),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_record_id", "outbox", ["record_id"])
    with op.batch_alter_table("records") as batch:
        for name in ("reason", "flags", "step", "route"):
            batch.drop_column(name)
