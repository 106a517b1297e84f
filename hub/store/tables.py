"""SQLAlchemy Core tables: the one description of the store, mirrored by the migrations.

Timestamps are ISO-8601 UTC strings and dates ISO `YYYY-MM-DD` strings, so that SQLite and
PostgreSQL store, sort and compare them the same way and the bulk path can hand rows to the
driver as plain tuples. PII never appears in a clear column: `pii` and `value_enc` hold
AES-GCM ciphertext, `natural_key` and `subject_bi` keyed BLAKE2b digests (blind indexes).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.String(32)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("record_type", sa.String(20), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=True),
    sa.Column("kelurahan", sa.String(13), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # processing | done | failed
    sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
    sa.Column("valid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("invalid", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
    sa.Column("warnings", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=True),
    # The column labels of each table (sheet) whose rows were sealed into `source_cells`, as
    # JSON: one list per table, by the ordinal each sealed row starts with (hub/custody.py).
    # NULL for batches stored before 0006 and for batches that did not finish.
    sa.Column("source_columns", sa.Text, nullable=True),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("record_type", sa.String(20), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("natural_key", sa.LargeBinary(32), nullable=False),
    sa.Column("subject_bi", sa.LargeBinary(32), nullable=True),
    sa.Column("kode_wilayah", sa.String(13), nullable=False),
    sa.Column("event_date", sa.String(10), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("batch_id", sa.ForeignKey("batches.id"), nullable=True, index=True),
    sa.Column("row_ref", sa.String(300), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON of the fields that are not PII
    sa.Column("pii", sa.LargeBinary, nullable=False),  # AES-GCM of the PII fields as JSON
    sa.Column("content_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Where the record is on its way out (routes.yaml): the route, the index of its current
    # step, flags raised by verification (JSON list of codes) and the reason, in Indonesian,
    # of a verify_failed / rejected / dead state. Never PII.
    sa.Column("route", sa.String(60), nullable=True),
    sa.Column("step", sa.Integer, nullable=True),
    sa.Column("flags", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    # The source row as read, sealed like `pii` with its own aad: `[layout_no, cells...]`,
    # labelled by its batch's `source_columns` (`[[label, cell], ...]` before 0006); the
    # chain of custody shows it (hub/custody.py). NULL for records stored before 0005.
    sa.Column("source_cells", sa.LargeBinary, nullable=True),
    # Natural keys are digests in a domain of their own per record type, so the key alone
    # is unique; a narrower index makes every insert cheaper.
    sa.UniqueConstraint("natural_key"),
    # Only deaths are looked up by subject (is this NIK deceased?): a partial index keeps
    # every other insert from paying for a random-key B-tree.
    sa.Index(
        "ix_records_deceased",
        "subject_bi",
        sqlite_where=sa.text("record_type = 'kematian'"),
        postgresql_where=sa.text("record_type = 'kematian'"),
    ),
)

record_history = sa.Table(
    "record_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.ForeignKey("records.id"), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("batch_id", sa.ForeignKey("batches.id"), nullable=True),
    sa.Column("row_ref", sa.String(300), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("pii", sa.LargeBinary, nullable=False),
    sa.Column("content_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("source_cells", sa.LargeBinary, nullable=True),
    sa.Column("replaced_at", Timestamp, nullable=False),
    sa.UniqueConstraint("record_id", "version"),
)

row_issues = sa.Table(
    "row_issues",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("batch_id", sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("sheet", sa.String(100), nullable=False, server_default=""),
    sa.Column("col", sa.Integer, nullable=True),
    sa.Column("column_label", sa.String(255), nullable=True),
    sa.Column("field", sa.String(64), nullable=True),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("value_enc", sa.LargeBinary, nullable=True),  # the offending value may be PII
    sa.Index("ix_row_issues_batch_id_row", "batch_id", "row"),
)

wilayah = sa.Table(
    "wilayah",
    metadata,
    sa.Column("kode", sa.String(13), primary_key=True),
    sa.Column("nama", sa.String(200), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),  # 1 provinsi .. 4 desa/kelurahan
    sa.Column("induk", sa.String(13), nullable=True, index=True),
    sa.Column("nama_cari", sa.String(200), nullable=False, index=True),  # lower-cased for search
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("entity_type", sa.String(40), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("details", sa.Text, nullable=False),  # canonical JSON, never PII in clear
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_events_entity", "entity_type", "entity_id"),
)

# One row (id = 1): the head of the audit hash chain. Updating it in the same transaction
# as the append serialises writers on PostgreSQL, so the chain never forks.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# ------------------------------------------------------------------ custody (0005)

# Signed checkpoints of the audit chain head (hub/audit.py): the event id and hash at the head,
# how many events the chain held, and an Ed25519 signature by the hub's audit key.
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),  # fingerprint of the public key
    sa.Column("signature", sa.String(128), nullable=False),  # hex
)

# The digest of each configuration file last loaded (routes.yaml): a different digest is a
# configuration change, audited once.
config_digests = sa.Table(
    "config_digests",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Versions of the key that seals PII (hub/keys.py). Version 1 is derived from the master key
# (`wrapped` NULL); later versions are random keys wrapped (AES-GCM) by the master key.
# state: active (seals) | retiring (opens only, rotation running) | retired (opens only).
data_keys = sa.Table(
    "data_keys",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("wrapped", sa.LargeBinary, nullable=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("retired_at", Timestamp, nullable=True),
)

# One re-encryption to a key version: where each sealed column has got to (JSON), so a
# stopped rotation resumes where it left off.
key_rotations = sa.Table(
    "key_rotations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # running | done
    sa.Column("progress", sa.Text, nullable=False),
    sa.Column("resealed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=True),
)

# Cold archives written by retention (hub/retention.py); the files live under the data dir.
retention_archives = sa.Table(
    "retention_archives",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("cutoff", Timestamp, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # of the encrypted file
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("delete_after", Timestamp, nullable=False),
    sa.Column("deleted_at", Timestamp, nullable=True),
)

# One message for one connector: a verification of a record (`kind` verify) or its delivery
# (`kind` deliver). Written in the same transaction as the record's state change (the
# transactional outbox); the dispatcher claims due rows, leases them (`lease_until`) and
# records the outcome. A message never leaves before `next_attempt_at`.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.ForeignKey("records.id"), nullable=False, index=True),
    sa.Column("record_version", sa.Integer, nullable=False),
    sa.Column("connector", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # verify | deliver
    sa.Column("step", sa.Integer, nullable=False),  # index of the route step that queued it
    sa.Column("correction", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("idempotency_key", sa.String(64), nullable=False),
    # Rows of one family move share a group key (a blind index); when first claimed they get
    # one event key, and are sent (and retried) together as one event under that key.
    sa.Column("group_key", sa.LargeBinary(32), nullable=True),
    sa.Column("event_key", sa.String(64), nullable=True, index=True),
    # queued | in_flight | done | dead | superseded
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("last_code", sa.String(20), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),  # a summary without PII
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("done_at", Timestamp, nullable=True),
    sa.UniqueConstraint("connector", "idempotency_key"),
    sa.Index("ix_outbox_due", "connector", "status", "next_attempt_at"),
)

# Answers of a verifier, keyed by a blind index of the request (NIK and elements), so a NIK
# is not asked twice within `cache_ttl`. Answers hold codes and verdicts only, never PII.
verify_cache = sa.Table(
    "verify_cache",
    metadata,
    sa.Column("connector", sa.String(40), primary_key=True),
    sa.Column("request_bi", sa.LargeBinary(32), primary_key=True),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

# What every dispatcher process knows about a connector: stopped by a fatal answer (until an
# admin resumes it), paused until a quota reset or an opening hour, quota left, breaker state.
connector_state = sa.Table(
    "connector_state",
    metadata,
    sa.Column("connector", sa.String(40), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),  # running | paused | stopped
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("paused_until", Timestamp, nullable=True),
    sa.Column("quota_left", sa.Integer, nullable=True),
    sa.Column("quota_resets_at", Timestamp, nullable=True),
    sa.Column("breaker", sa.Text, nullable=True),  # JSON snapshot of this process's breaker
    sa.Column("updated_at", Timestamp, nullable=False),
)

bookmarks = sa.Table(
    "bookmarks",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)


# ------------------------------------------------------------------ API: people, systems, keys

# People who log in (portal, scripts): one role and one region each.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),  # argon2id
    sa.Column("role", sa.String(20), nullable=False),  # operator | verifikator | admin | auditor
    sa.Column("wilayah", sa.String(13), nullable=False),  # dotted prefix: their region
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Other agencies' systems: OAuth2 client credentials, scopes and one region each.
api_clients = sa.Table(
    "api_clients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(255), nullable=False),  # argon2id
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # space-separated
    sa.Column("wilayah", sa.String(13), nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

# Keys that sign the hub's JWTs. The private JWK is sealed with the data key; retired keys
# stay published in the JWKS until every token they signed has expired.
signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(10), nullable=False),
    sa.Column("private_jwk", sa.LargeBinary, nullable=False),  # AES-GCM sealed
    sa.Column("public_jwk", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("retired_at", Timestamp, nullable=True),
)

# Answers of `POST /records/{type}` by Idempotency-Key, per caller: the same key and body get
# the first answer again; the same key with another body is refused.
api_idempotency = sa.Table(
    "api_idempotency",
    metadata,
    sa.Column("principal", sa.String(120), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),  # JSON, no PII in clear (ids, counts, codes)
    sa.Column("created_at", Timestamp, nullable=False),
)

# An uploaded file, sealed, kept for the operator's annotated report.
batch_files = sa.Table(
    "batch_files",
    metadata,
    sa.Column("batch_id", sa.ForeignKey("batches.id"), primary_key=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),  # AES-GCM sealed file bytes
    sa.Column("created_at", Timestamp, nullable=False),
)

# The statistics read model: records per type, status, desa/kelurahan and event month, kept
# up to date in the same transaction as every change of a record's status.
record_counts = sa.Table(
    "record_counts",
    metadata,
    sa.Column("record_type", sa.String(20), primary_key=True),
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("kode_wilayah", sa.String(13), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),  # YYYY-MM of the event date, or ""
    sa.Column("count", sa.Integer, nullable=False),
)


# ------------------------------------------------------------------ sync and jobs (0004)

# One page of a scheduled pull from a legacy database (hub/sync.py): the batch that holds the
# page's rows and the source position after the page. The position counts only once that batch
# is `done`, which happens in the same transaction that commits the page's records, so the
# stored position can never run ahead of what the hub holds.
sync_pages = sa.Table(
    "sync_pages",
    metadata,
    sa.Column("batch_id", sa.ForeignKey("batches.id"), primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("position", sa.Text, nullable=False),  # JSON, no PII (cursor values, versions)
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_sync_pages_source_batch_id", "source", "batch_id"),
)

# Keys of the upstream rows a source has delivered, so that rows deleted upstream are noticed
# (a key the hub has that the source no longer has) and reported in `sync_deletions`.
sync_keys = sa.Table(
    "sync_keys",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("key", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seen_at", Timestamp, nullable=False),
    sa.Column("deleted_at", Timestamp, nullable=True),
)

# Rows deleted upstream, reported (never applied silently): found by Change Tracking (`D`
# operations) or by comparing keys (`missing`).
sync_deletions = sa.Table(
    "sync_deletions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("locator", sa.String(255), nullable=False),  # table or "query"
    sa.Column("key", sa.BigInteger, nullable=False),
    sa.Column("via", sa.String(20), nullable=False),  # change_tracking | missing
    sa.Column("detected_at", Timestamp, nullable=False),
    sa.Index("ix_sync_deletions_source_key", "source", "key"),
)

# Scheduled jobs (hub/jobs): the last schedule tick a process claimed, so that several hub
# processes firing the same tick run the job once.
job_state = sa.Table(
    "job_state",
    metadata,
    sa.Column("job", sa.String(120), primary_key=True),
    sa.Column("last_tick", Timestamp, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Every run of a job: when, where, how it ended, how many rows it handled (no PII in detail).
job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job", sa.String(120), nullable=False),
    sa.Column("tick", Timestamp, nullable=True),  # the schedule tick; NULL when run by hand
    sa.Column("process", sa.String(120), nullable=False),  # host:pid
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("outcome", sa.String(20), nullable=False),  # running | ok | failed
    sa.Column("rows", sa.Integer, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),  # JSON summary or the error's class and text
    sa.Index("ix_job_runs_job_id", "job", "id"),
)
