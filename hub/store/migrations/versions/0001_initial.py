"""Initial schema: batches, records and their history, row issues, wilayah, audit, outbox.

Revision ID: 0001
Revises:
Create Date: 2025-11-22

Written out in full (not imported from `hub.store.tables`) so that later changes to the
tables need a new revision; `tests/hub/test_store.py` checks that head equals the tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def _ts(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("record_type", sa.String(20), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("kelurahan", sa.String(13), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows", sa.Integer, server_default="0", nullable=False),
        sa.Column("valid", sa.Integer, server_default="0", nullable=False),
        sa.Column("invalid", sa.Integer, server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer, server_default="0", nullable=False),
        sa.Column("warnings", sa.Integer, server_default="0", nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        _ts("created_at"),
        _ts("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
    )

    op.create_table(
        "records",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("record_type", sa.String(20), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("natural_key", sa.LargeBinary(32), nullable=False),
        sa.Column("subject_bi", sa.LargeBinary(32), nullable=True),
        sa.Column("kode_wilayah", sa.String(13), nullable=False),
        sa.Column("event_date", sa.String(10), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("batch_id", sa.Integer, nullable=True),
        sa.Column("row_ref", sa.String(300), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("pii", sa.LargeBinary, nullable=False),
        sa.Column("content_hash", sa.LargeBinary(32), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name="fk_records_batch_id_batches"),
        sa.PrimaryKeyConstraint("id", name="pk_records"),
        sa.UniqueConstraint("natural_key", name="uq_records_natural_key"),
    )
    op.create_index("ix_records_batch_id", "records", ["batch_id"])
    # Only deaths are looked up by subject (is this NIK deceased?); a partial index keeps
    # every other insert from paying for a random-key B-tree.
    op.create_index(
        "ix_records_deceased",
        "records",
        ["subject_bi"],
        sqlite_where=sa.text("record_type = 'kematian'"),
        postgresql_where=sa.text("record_type = 'kematian'"),
    )

    op.create_table(
        "record_history",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("batch_id", sa.Integer, nullable=True),
        sa.Column("row_ref", sa.String(300), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("pii", sa.LargeBinary, nullable=False),
        sa.Column("content_hash", sa.LargeBinary(32), nullable=False),
        _ts("replaced_at"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_record_history_batch_id_batches"
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name="fk_record_history_record_id_records"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_record_history"),
        sa.UniqueConstraint("record_id", "version", name="uq_record_history_record_id_version"),
    )
    op.create_index("ix_record_history_record_id", "record_history", ["record_id"])

    op.create_table(
        "row_issues",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("batch_id", sa.Integer, nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("sheet", sa.String(100), server_default="", nullable=False),
        sa.Column("col", sa.Integer, nullable=True),
        sa.Column("column_label", sa.String(255), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("value_enc", sa.LargeBinary, nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_row_issues_batch_id_batches"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_row_issues"),
    )
    op.create_index("ix_row_issues_batch_id_row", "row_issues", ["batch_id", "row"])

    op.create_table(
        "wilayah",
        sa.Column("kode", sa.String(13), nullable=False),
        sa.Column("nama", sa.String(200), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("induk", sa.String(13), nullable=True),
        sa.Column("nama_cari", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("kode", name="pk_wilayah"),
    )
    op.create_index("ix_wilayah_induk", "wilayah", ["induk"])
    op.create_index("ix_wilayah_nama_cari", "wilayah", ["nama_cari"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, nullable=False),
        _ts("occurred_at"),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_entity", "audit_events", ["entity_type", "entity_id"])

    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(audit_head, [{"id": 1, "last_id": 0, "hash": GENESIS_HASH}])

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

    op.create_table(
        "bookmarks",
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("source", name="pk_bookmarks"),
    )


def downgrade() -> None:
    for table in (
        "bookmarks",
        "outbox",
        "audit_head",
        "audit_events",
        "wilayah",
        "row_issues",
        "record_history",
        "records",
        "batches",
    ):
        op.drop_table(table)  # indexes go with their table
