"""Versions of the key that seals PII, and re-encryption to a new version without downtime.

Every sealed value carries its key version (the second byte of the ciphertext, see
`hub.crypto`). Version 1 is derived from the master key; `start_rotation` adds a random
version wrapped by the master key (`data_keys`), makes it the one that seals, and marks the
others `retiring`; `run_rotation` then re-encrypts every sealed column in batches of rows, each
batch its own short transaction, with its position stored (`key_rotations.progress`) so a
stopped rotation resumes where it left off. Readers never wait: every version stays loaded,
and a process that meets a version it does not know reads the key ring again
(`attach_key_ring`). A row changed by someone else meanwhile is left alone (compare-and-swap)
and picked up by the final sweep; when a sweep finds no value under an old version, the old
versions are `retired` (they still open archives, never seal) and the rotation is done.

Blind indexes are not re-keyed: they use their own key derived from the master key, so lookups
and deduplication keep working throughout (docs/custody.md).

```python
rotation = start_rotation(hub, actor="admin")
report = run_rotation(hub, batch_size=500)   # resumable; returns when every value is resealed
```
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlalchemy as sa

from hub.audit import AuditLog, lock_chain_head, utc_timestamp
from hub.crypto import KEY_SIZE, DataProtector
from hub.errors import ConfigError
from hub.store.tables import (
    batch_files,
    data_keys,
    key_rotations,
    record_history,
    records,
    row_issues,
    signing_keys,
)

if TYPE_CHECKING:
    from hub.context import Hub

#: Seconds a process seals with the key versions it read before reading them again.
REFRESH: Final = 30.0
MAX_VERSION: Final = 255

AadOf = Callable[[Any], bytes]


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """One column of sealed values: its table, key columns, and how to rebuild its aad.

    `query` selects the key columns, the sealed column (labelled `blob`) and whatever `aad`
    needs; a module that seals a new column registers it in `SEALED_COLUMNS`.
    """

    name: str
    table: sa.Table
    column: str
    keys: tuple[str, ...]
    query: Callable[[], sa.Select[Any]]
    aad: AadOf


def _records_query() -> sa.Select[Any]:
    return sa.select(records.c.id, records.c.record_type, records.c.natural_key)


def _source_aad(row: Any) -> bytes:
    from hub.custody import source_aad

    return source_aad(row.record_type, bytes(row.natural_key))


def _history_query() -> sa.Select[Any]:
    return sa.select(record_history.c.id, records.c.record_type, records.c.natural_key).join_from(
        record_history, records, record_history.c.record_id == records.c.id
    )


SEALED_COLUMNS: Final[tuple[SealedColumn, ...]] = (
    SealedColumn(
        "records.pii",
        records,
        "pii",
        ("id",),
        _records_query,
        lambda r: r.record_type.encode() + bytes(r.natural_key),
    ),
    SealedColumn(
        "records.source_cells", records, "source_cells", ("id",), _records_query, _source_aad
    ),
    SealedColumn(
        "record_history.pii",
        record_history,
        "pii",
        ("id",),
        _history_query,
        lambda r: r.record_type.encode() + bytes(r.natural_key),
    ),
    SealedColumn(
        "record_history.source_cells",
        record_history,
        "source_cells",
        ("id",),
        _history_query,
        _source_aad,
    ),
    SealedColumn(
        "row_issues.value_enc",
        row_issues,
        "value_enc",
        ("id",),
        lambda: sa.select(row_issues.c.id),
        lambda r: b"issue",
    ),
    SealedColumn(
        "batch_files.content",
        batch_files,
        "content",
        ("batch_id",),
        lambda: sa.select(batch_files.c.batch_id),
        lambda r: f"batch_files:{r.batch_id}".encode(),
    ),
    SealedColumn(
        "signing_keys.private_jwk",
        signing_keys,
        "private_jwk",
        ("kid",),
        lambda: sa.select(signing_keys.c.kid),
        lambda r: b"signing-key" + r.kid.encode(),
    ),
)


# ------------------------------------------------------------------ the key ring


def load_key_ring(conn: sa.Connection, protector: DataProtector) -> int:
    """Install every stored key version into `protector` and activate the active one; the
    active version (1 when no rotation ever ran)."""
    active = 1
    for row in conn.execute(sa.select(data_keys).order_by(data_keys.c.version)):
        if row.wrapped is not None:
            protector.install(row.version, protector.unwrap_key(bytes(row.wrapped), row.version))
        if row.state == "active":
            active = row.version
    if active != protector.key_id:
        protector.activate(active)
    return active


def attach_key_ring(engine: sa.Engine, protector: DataProtector, every: float = REFRESH) -> None:
    """Load the key ring now, and again every `every` seconds and on an unknown version."""

    def refresh(target: DataProtector) -> None:
        with engine.connect() as conn:
            load_key_ring(conn, target)

    refresh(protector)
    protector.set_refresher(refresh, every)


# ------------------------------------------------------------------ rotation


@dataclass(slots=True)
class RotationReport:
    """Where a rotation is: its target version, values resealed so far, per column."""

    rotation_id: int
    to_version: int
    state: str
    resealed: int = 0
    per_column: dict[str, int] = field(default_factory=dict)
    remaining: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rotation_id": self.rotation_id,
            "to_version": self.to_version,
            "state": self.state,
            "resealed": self.resealed,
            "per_column": dict(self.per_column),
            "remaining": self.remaining,
        }


def running_rotation(conn: sa.Connection) -> Any | None:
    return conn.execute(
        sa.select(key_rotations)
        .where(key_rotations.c.state == "running")
        .order_by(key_rotations.c.id.desc())
    ).first()


def start_rotation(hub: Hub, *, actor: str = "system") -> RotationReport:
    """Make a new key version the one that seals and record a running rotation to it.

    A rotation already running is returned instead (run it to the end first). Audited
    (`pii_key.rotation_started`) in the same transaction.
    """
    protector = hub.protector
    with hub.engine.begin() as conn:
        lock_chain_head(conn)  # serialises two rotations started at once
        running = running_rotation(conn)
        if running is not None:
            return _report(running)
        stored = {r.version: r for r in conn.execute(sa.select(data_keys))}
        now = utc_timestamp()
        if 1 not in stored:
            conn.execute(
                data_keys.insert().values(version=1, wrapped=None, state="active", created_at=now)
            )
        version = max([1, *stored]) + 1
        if version > MAX_VERSION:
            raise ConfigError(f"no key version left (at most {MAX_VERSION}); see docs/custody.md")
        key = os.urandom(KEY_SIZE)
        conn.execute(
            data_keys.update().where(data_keys.c.state == "active").values(state="retiring")
        )
        conn.execute(
            data_keys.insert().values(
                version=version,
                wrapped=protector.wrap_key(key, version),
                state="active",
                created_at=now,
            )
        )
        rotation_id = conn.execute(
            key_rotations.insert()
            .values(to_version=version, state="running", progress="{}", actor=actor, started_at=now)
            .returning(key_rotations.c.id)
        ).scalar_one()
        AuditLog.record(
            conn,
            actor=actor,
            action="pii_key.rotation_started",
            entity_type="data_key",
            entity_id=str(version),
            details={"rotation": rotation_id, "previous": sorted(stored) or [1]},
        )
    protector.install(version, key, active=True)
    return RotationReport(rotation_id, version, "running")


def _report(row: Any) -> RotationReport:
    progress = orjson.loads(row.progress)
    per_column = {name: int(item.get("resealed", 0)) for name, item in progress.items()}
    return RotationReport(row.id, row.to_version, row.state, int(row.resealed), per_column)


def run_rotation(
    hub: Hub,
    *,
    batch_size: int = 500,
    max_batches: int | None = None,
    pause: float = 0.0,
    actor: str = "system",
) -> RotationReport:
    """Re-encrypt every sealed value to the running rotation's version, in batches.

    Resumes from the stored progress; returns after `max_batches` batches (state still
    `running`) or when a final sweep found nothing left under an old version (`done`).
    `pause` seconds between batches leave room for other writers.
    """
    protector = hub.protector
    with hub.engine.connect() as conn:
        row = running_rotation(conn)
        load_key_ring(conn, protector)
    if row is None:
        raise ConfigError("no key rotation is running; start one with hub keys rotate --pii")
    report = _report(row)
    progress: dict[str, dict[str, Any]] = orjson.loads(row.progress)
    batches = 0
    for sealed in SEALED_COLUMNS:
        state = progress.setdefault(sealed.name, {"after": None, "resealed": 0, "done": False})
        while not state["done"]:
            if max_batches is not None and batches >= max_batches:
                return report
            count, last = _reseal_batch(hub, sealed, report.to_version, state["after"], batch_size)
            batches += 1
            state["resealed"] += count
            state["after"] = last
            state["done"] = last is None
            report.resealed += count
            report.per_column[sealed.name] = state["resealed"]
            _save_progress(hub, report, progress)
            if pause:
                time.sleep(pause)
    remaining = sweep_remaining(hub, report.to_version)
    report.remaining = remaining
    if remaining:
        # Values sealed meanwhile by a process that had not yet read the new version: go again.
        for state in progress.values():
            state.update(after=None, done=False)
        _save_progress(hub, report, progress)
        return run_rotation(
            hub, batch_size=batch_size, max_batches=max_batches, pause=pause, actor=actor
        )
    _finish(hub, report, actor)
    return report


def _reseal_batch(
    hub: Hub, sealed: SealedColumn, version: int, after: Any, batch_size: int
) -> tuple[int, Any]:
    """Reseal up to `batch_size` values after key `after`; (resealed, last key or None)."""
    table, key_name = sealed.table, sealed.keys[0]
    key_col = table.c[key_name]
    blob_col = table.c[sealed.column]
    query = sealed.query().add_columns(blob_col.label("blob")).order_by(key_col).limit(batch_size)
    query = query.where(blob_col.is_not(None))
    if after is not None:
        query = query.where(key_col > after)
    protector = hub.protector
    count = 0
    with hub.engine.begin() as conn:
        rows = conn.execute(query).all()
        for row in rows:
            blob = bytes(row.blob)
            if len(blob) > 1 and blob[1] == version:
                continue
            aad = sealed.aad(row)
            fresh = protector.encrypt(protector.decrypt(blob, aad), aad)
            changed = conn.execute(
                table.update()
                .where(key_col == getattr(row, key_name), blob_col == blob)
                .values({sealed.column: fresh})
            ).rowcount
            count += changed
    last = getattr(rows[-1], key_name) if len(rows) == batch_size else None
    return count, last


def sweep_remaining(hub: Hub, version: int) -> int:
    """How many sealed values are still under another version than `version`."""
    marker = bytes((1, version))
    total = 0
    with hub.engine.connect() as conn:
        for sealed in SEALED_COLUMNS:
            column = sealed.table.c[sealed.column]
            total += conn.execute(
                sa.select(sa.func.count())
                .select_from(sealed.table)
                .where(column.is_not(None), sa.func.substr(column, 1, 2) != marker)
            ).scalar_one()
    return int(total)


def _save_progress(hub: Hub, report: RotationReport, progress: dict[str, Any]) -> None:
    with hub.engine.begin() as conn:
        conn.execute(
            key_rotations.update()
            .where(key_rotations.c.id == report.rotation_id)
            .values(progress=orjson.dumps(progress).decode(), resealed=report.resealed)
        )


def _finish(hub: Hub, report: RotationReport, actor: str) -> None:
    now = utc_timestamp()
    with hub.engine.begin() as conn:
        retired = sorted(
            conn.execute(
                data_keys.update()
                .where(data_keys.c.state == "retiring")
                .values(state="retired", retired_at=now)
                .returning(data_keys.c.version)
            ).scalars()
        )
        conn.execute(
            key_rotations.update()
            .where(key_rotations.c.id == report.rotation_id)
            .values(state="done", finished_at=now)
        )
        AuditLog.record(
            conn,
            actor=actor,
            action="pii_key.rotated",
            entity_type="data_key",
            entity_id=str(report.to_version),
            details={
                "rotation": report.rotation_id,
                "resealed": report.resealed,
                "per_column": report.per_column,
                "retired": retired,
            },
        )
    report.state = "done"


@dataclass(frozen=True, slots=True)
class KeyStatus:
    version: int
    state: str
    created_at: str
    retired_at: str | None
    values: int  # sealed values under this version


def key_status(hub: Hub) -> tuple[list[KeyStatus], RotationReport | None]:
    """Every key version with how many values it seals, and the running rotation if any."""
    counts: dict[int, int] = {}
    with hub.engine.connect() as conn:
        for sealed in SEALED_COLUMNS:
            column = sealed.table.c[sealed.column]
            version = sa.func.substr(column, 2, 1)
            for key, n in conn.execute(
                sa.select(version, sa.func.count())
                .select_from(sealed.table)
                .where(column.is_not(None))
                .group_by(version)
            ):
                counts[bytes(key)[0]] = counts.get(bytes(key)[0], 0) + int(n)
        rows = list(conn.execute(sa.select(data_keys).order_by(data_keys.c.version)))
        running = running_rotation(conn)
    found = [
        KeyStatus(r.version, r.state, r.created_at, r.retired_at, counts.pop(r.version, 0))
        for r in rows
    ]
    if not found:
        found.append(KeyStatus(1, "active", "", None, counts.pop(1, 0)))
    return found, None if running is None else _report(running)


__all__ = [
    "SEALED_COLUMNS",
    "KeyStatus",
    "RotationReport",
    "attach_key_ring",
    "key_status",
    "load_key_ring",
    "run_rotation",
    "start_rotation",
    "sweep_remaining",
]
