"""Chain of custody: the whole path of one record, each step with its time, actor and audit hash.

```
source (file, sheet, row, original cells) -> normalised values -> validation issues
  -> Dukcapil answers -> approval -> each delivery attempt -> the national system's receipt
```

The original cells of every stored row are kept sealed next to the record
(`records.source_cells`, AES-GCM with an aad of their own, see `source_aad`) as the JSON
`[layout_no, cell0, cell1, ...]`: every cell of the row as read, after the ordinal of its
table (sheet) within the batch. The column labels are stored once per batch
(`batches.source_columns`, JSON: one list of labels per table, by ordinal), not on every row.
Records sealed before migration 0006 hold `[[label, cell], ...]` of their non-empty cells
instead, and still open; records stored before migration 0005 have none, and their trace says
so. PII in a trace is masked unless the caller may read it (`reveal`), exactly as
`GET /records/{id}` does.

```python
trace = trace_record(hub, 42, reveal=False)
trace["chain"]["ok"], [step["step"] for step in trace["steps"]]
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlalchemy as sa

from hub.audit import verify_chain
from hub.crypto import DataProtector
from hub.records import RawRow
from hub.store.tables import audit_events, batches, outbox, record_history, records, row_issues

if TYPE_CHECKING:
    from hub.context import Hub
    from hub.layout import TableLayout
    from hub.schemas import RecordSchema

_SOURCE_AAD: Final = b"\x1fsource_cells"


def source_aad(record_type: str, natural_key: bytes) -> bytes:
    """The aad of a record's sealed source row: bound to the record, apart from its `pii`."""
    return record_type.encode() + natural_key + _SOURCE_AAD


class SourceSealer:
    """Seals the source row of each stored record: `[layout_no, cell0, cell1, ...]`, every
    cell as read after the ordinal of its table among the tables this sealer has seen; the
    labels of those tables are `columns()`."""

    __slots__ = ("_columns", "_layout", "_layouts", "_prefix", "_protector", "_type")

    def __init__(self, protector: DataProtector, record_type: str) -> None:
        self._protector = protector
        self._type = record_type
        self._layouts: list[TableLayout] = []
        self._columns: list[list[str]] = []
        self._layout: TableLayout | None = None
        self._prefix = b""

    def _prefix_of(self, layout: TableLayout) -> bytes:
        """`[layout_no` of `layout`, numbering a table not seen before."""
        if layout is not self._layout:
            number = next((n for n, seen in enumerate(self._layouts) if seen is layout), None)
            if number is None:
                number = len(self._layouts)
                labels = [""] * max(
                    layout.width, max((c.index for c in layout.columns), default=-1) + 1
                )
                for column in layout.columns:
                    labels[column.index] = column.label
                self._layouts.append(layout)
                self._columns.append(labels)
            self._layout, self._prefix = layout, b"[%d" % number
        return self._prefix

    def seal(
        self, layout: TableLayout | None, raw: Sequence[RawRow], index: int, natural_key: bytes
    ) -> bytes | None:
        """The sealed source row `raw[index]`; None when the rows as read were not given."""
        if layout is None or index >= len(raw):
            return None
        prefix = self._prefix_of(layout)
        cells = orjson.dumps(raw[index].cells, default=str)
        plain = prefix + (b"," + cells[1:] if len(cells) > 2 else b"]")
        return self._protector.encrypt(plain, source_aad(self._type, natural_key))

    def columns(self) -> list[list[str]]:
        """The labels of each sealed table, by `layout_no`: entry i is column i's label ("" for
        a column without one)."""
        return self._columns


def open_source_cells(
    protector: DataProtector,
    record_type: str,
    natural_key: bytes,
    sealed: bytes | None,
    columns: Sequence[Sequence[str]] | None = None,
) -> list[tuple[str, Any]] | None:
    """The non-empty cells of the source row sealed by `SourceSealer` as (label, cell), or None
    when none was kept. `columns` are the labels of the batch that sealed it
    (`batches.source_columns`); a cell whose column has no label there is named `#N`."""
    if sealed is None:
        return None
    found = orjson.loads(protector.decrypt(bytes(sealed), source_aad(record_type, natural_key)))
    if not found or not isinstance(found[0], int):  # [[label, cell], ...], before 0006
        return [(str(label), value) for label, value in found]
    number, cells = found[0], found[1:]
    labels: Sequence[Any] = ()
    if isinstance(columns, (list, tuple)) and 0 <= number < len(columns):
        labels = columns[number] if isinstance(columns[number], (list, tuple)) else ()
    return [
        (_label(labels, i), cell) for i, cell in enumerate(cells) if cell is not None and cell != ""
    ]


def _label(labels: Sequence[Any], i: int) -> str:
    label = labels[i] if i < len(labels) else None
    return label if isinstance(label, str) and label else f"#{i + 1}"


# ------------------------------------------------------------------ the trace


def _masked_cells(
    schema: RecordSchema,
    cells: list[tuple[str, Any]] | None,
    reveal: bool,
) -> list[dict[str, Any]] | None:
    """Source cells for a response: a cell whose column maps to a PII field (or to no known
    field) is masked unless `reveal`."""
    if cells is None:
        return None
    from hub.api.support import mask_value

    by_label = _pii_kinds_by_label(schema)
    out = []
    for label, value in cells:
        kind = by_label.get(_fold(label), "text")
        shown = value if reveal or kind is None else mask_value(kind, value)
        out.append({"column": label, "value": shown})
    return out


def _fold(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _pii_kinds_by_label(schema: RecordSchema) -> dict[str, str | None]:
    """Folded header label -> the PII kind to mask it with, or None for a field that is not PII.
    Labels the schema does not know stay masked (they may hold anything)."""
    kinds: dict[str, str | None] = {}
    for name, spec in schema.fields.items():
        kind = spec.kind if spec.pii else None
        for alias in (name, spec.title, *spec.aliases):
            if alias:
                kinds[_fold(str(alias))] = kind
    return kinds


def _event(row: Any) -> dict[str, Any]:
    return {
        "audit_id": row.id,
        "action": row.action,
        "at": row.occurred_at,
        "actor": row.actor,
        "hash": row.hash,
        "details": orjson.loads(row.details),
    }


def _record_events(conn: sa.Connection, record: Any, messages: Sequence[Any]) -> list[Any]:
    """Audit events about the record itself, its batch, and its outbox messages (alone or
    sent in one event with its family)."""
    conditions: list[sa.ColumnElement[bool]] = [
        sa.and_(audit_events.c.entity_type == "record", audit_events.c.entity_id == str(record.id))
    ]
    batch_ids = {record.batch_id} | {b for b in _history_batches(conn, record.id)}
    batch_ids.discard(None)
    if batch_ids:
        conditions.append(
            sa.and_(
                audit_events.c.entity_type == "batch",
                audit_events.c.entity_id.in_([str(b) for b in batch_ids]),
            )
        )
    if messages:
        ids = [str(m.id) for m in messages]
        keys = {m.event_key for m in messages if m.event_key}
        conditions.append(
            sa.and_(
                audit_events.c.entity_type == "outbox",
                sa.or_(
                    audit_events.c.entity_id.in_(ids),
                    *(audit_events.c.details.contains(f'"event_key":"{key}"') for key in keys),
                ),
            )
        )
    rows = conn.execute(
        sa.select(audit_events).where(sa.or_(*conditions)).order_by(audit_events.c.id)
    ).all()
    mine = {m.id for m in messages}
    kept = []
    for row in rows:
        if row.entity_type == "outbox":
            details = orjson.loads(row.details)
            if record.id not in details.get("records", []) and not (
                set(details.get("messages", [])) & mine or int(row.entity_id) in mine
            ):
                continue
        kept.append(row)
    return kept


def _history_batches(conn: sa.Connection, record_id: int) -> list[int]:
    return list(
        conn.execute(
            sa.select(record_history.c.batch_id).where(record_history.c.record_id == record_id)
        ).scalars()
    )


_STEP_OF: Final[Mapping[str, str]] = {
    "batch.uploaded": "received",
    "batch.ingested": "ingested",
    "batch.routed": "routed",
    "record.routed": "routed",
    "record.verified": "verified",
    "record.approved": "approved",
    "record.rejected": "rejected",
    "outbox.replayed": "replayed",
}


def _step_name(action: str) -> str:
    if action.startswith("outbox.verify."):
        return "verify_attempt"
    if action.startswith("outbox.deliver."):
        return "delivery_attempt"
    return _STEP_OF.get(action, action)


def _issues(conn: sa.Connection, batch_id: int | None, row_ref: str) -> list[dict[str, Any]]:
    """Issues stored for the record's source row (warnings: a stored row has no errors)."""
    if batch_id is None:
        return []
    sheet, row_number = _parse_row_ref(row_ref)
    if row_number is None:
        return []
    query = sa.select(
        row_issues.c.code,
        row_issues.c.severity,
        row_issues.c.field,
        row_issues.c.column_label,
        row_issues.c.message,
    ).where(row_issues.c.batch_id == batch_id, row_issues.c.row == row_number)
    if sheet is not None:
        query = query.where(row_issues.c.sheet == sheet)
    return [
        {
            "code": r.code,
            "severity": r.severity,
            "field": r.field,
            "column": r.column_label,
            "message": r.message,
        }
        for r in conn.execute(query.order_by(row_issues.c.id))
    ]


def _parse_row_ref(row_ref: str) -> tuple[str | None, int | None]:
    """`Juli!R12` -> ("Juli", 12); `R12` -> ("", 12); `line 42` -> ("", 42); `#7` -> (None, 7)."""
    if "!R" in row_ref:
        sheet, _, number = row_ref.rpartition("!R")
        return sheet, int(number) if number.isdigit() else None
    if row_ref.startswith("R") and row_ref[1:].isdigit():
        return "", int(row_ref[1:])
    if row_ref.startswith("line ") and row_ref[5:].isdigit():
        return "", int(row_ref[5:])
    _, _, number = row_ref.rpartition("#")
    return None, int(number) if number.isdigit() else None


def _source(
    hub: Hub,
    conn: sa.Connection,
    record: Any,
    version: Any,
    schema: RecordSchema,
    reveal: bool,
) -> dict[str, Any]:
    batch = None
    if version.batch_id is not None:
        batch = conn.execute(sa.select(batches).where(batches.c.id == version.batch_id)).first()
    sheet, row_number = _parse_row_ref(version.row_ref)
    columns = (
        orjson.loads(batch.source_columns)
        if batch is not None and batch.source_columns is not None
        else None
    )
    cells = open_source_cells(
        hub.protector, record.record_type, bytes(record.natural_key), version.source_cells, columns
    )
    return {
        "batch_id": version.batch_id,
        "file": batch.file_name if batch is not None else None,
        "file_sha256": batch.file_sha256 if batch is not None else None,
        "source": batch.source if batch is not None else None,
        "sheet": sheet or None,
        "row": row_number,
        "row_ref": version.row_ref,
        "at": batch.created_at if batch is not None else None,
        "actor": batch.actor if batch is not None else None,
        "cells": _masked_cells(schema, cells, reveal),
        "cells_kept": cells is not None,
    }


def trace_record(hub: Hub, record_id: int, *, reveal: bool) -> dict[str, Any] | None:
    """The chain of custody of record `record_id` (None when there is no such record).

    Versions oldest first, each with its source row, normalised values (masked unless
    `reveal`) and the validation issues of its row; then every audited step (ingest, routing,
    Dukcapil answers, approval, each delivery attempt, the receipt) with time, actor and audit
    hash; and whether the whole audit chain verifies.
    """
    from hub.api.support import shown_values

    with hub.engine.connect() as conn:
        record = conn.execute(sa.select(records).where(records.c.id == record_id)).one_or_none()
        if record is None:
            return None
        history = conn.execute(
            sa.select(record_history)
            .where(record_history.c.record_id == record_id)
            .order_by(record_history.c.version)
        ).all()
        messages = conn.execute(
            sa.select(outbox).where(outbox.c.record_id == record_id).order_by(outbox.c.id)
        ).all()
        key = bytes(record.natural_key)
        versions = []
        for version in [*history, record]:
            schema = hub.schemas.get(record.record_type, record.schema_version)
            values: dict[str, Any] = orjson.loads(version.data)
            values.update(
                hub.protector.open_json(bytes(version.pii), record.record_type.encode() + key)
            )
            versions.append(
                {
                    "version": version.version,
                    "status": version.status,
                    "source": _source(hub, conn, record, version, schema, reveal),
                    "normalised": shown_values(schema, values, reveal=reveal),
                    "issues": _issues(conn, version.batch_id, version.row_ref),
                    "replaced_at": getattr(version, "replaced_at", None),
                }
            )
        events = _record_events(conn, record, messages)
        chain = verify_chain(conn)
    steps = [{"step": _step_name(row.action), **_event(row)} for row in events]
    receipts = [
        {
            "connector": m.connector,
            "kind": m.kind,
            "record_version": m.record_version,
            "status": m.status,
            "code": m.last_code,
            "at": m.done_at,
            "attempts": m.attempts,
        }
        for m in messages
        if m.kind == "deliver" and m.status == "done"
    ]
    return {
        "record": {
            "id": record.id,
            "record_type": record.record_type,
            "version": record.version,
            "status": record.status,
            "kode_wilayah": record.kode_wilayah,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        },
        "masked": not reveal,
        "versions": versions,
        "steps": steps,
        "receipts": receipts,
        "chain": {
            "ok": chain.ok,
            "checked": chain.checked,
            "first_bad_id": chain.first_bad_id,
            "position": chain.position,
            "kind": chain.kind,
            "reason": chain.reason,
        },
    }
