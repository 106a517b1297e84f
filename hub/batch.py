"""Decide each validated row's outcome against the file and the store, and persist it.

Outcomes: `invalid` (kept as issues, never forwarded), `duplicate` (the same record is
already held, in this file or in the store), or `valid`: a new record, or a new version of
a held record whose content changed (a correction). A batch's counts always add up to its
rows. Everything the writer does happens inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa

from hub.audit import utc_timestamp
from hub.crypto import DataProtector
from hub.custody import SourceSealer
from hub.flow import OUTBOX_COLUMNS, EnteringRecord, Flow, Placement
from hub.layout import TableLayout
from hub.records import Issue, Outcome, RawRow, Severity
from hub.schemas import RecordSchema
from hub.stats import Cell, Move, tally, tally_new
from hub.store import bulk_insert, select_in
from hub.store.tables import outbox, record_history, records, row_issues
from hub.validate import RecordValidator, RowResult

RECORD_COLUMNS = (
    "record_type",
    "schema_version",
    "natural_key",
    "subject_bi",
    "kode_wilayah",
    "event_date",
    "status",
    "version",
    "batch_id",
    "row_ref",
    "data",
    "pii",
    "content_hash",
    "created_at",
    "updated_at",
    "source_cells",
    "route",
    "step",
)
ISSUE_COLUMNS = (
    "batch_id",
    "row",
    "sheet",
    "col",
    "column_label",
    "field",
    "code",
    "severity",
    "message",
    "value_enc",
)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Held:
    """What the store holds under a natural key."""

    id: int
    content_hash: bytes
    version: int
    kode_wilayah: str
    batch_id: int | None
    row_ref: str

    @property
    def row(self) -> int:
        """The row number inside `row_ref` ("line 42", "Juli!R12")."""
        digits = re.search(r"(\d+)$", self.row_ref)
        return int(digits.group(1)) if digits else 0


class Encoded(NamedTuple):
    """A valid row as it would be stored (see `BatchWriter.encode`)."""

    position: int  # in the chunk
    key: bytes
    content: bytes
    clear_json: bytes
    pii_json: bytes


@dataclass(slots=True)
class Counts:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    warnings: int = 0
    corrected: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "warnings": self.warnings,
        }


@dataclass
class BatchWriter:
    """Outcomes and persistence for one batch. With `conn=None` it only decides (dry run
    without a store); with `dry_run=True` it reads the store but writes nothing."""

    schema: RecordSchema
    validator: RecordValidator
    protector: DataProtector
    conn: sa.Connection | None
    batch_id: int | None = None
    dry_run: bool = False
    counts: Counts = field(default_factory=Counts)
    digest: Any = field(default_factory=hashlib.sha256)
    # Natural keys seen in this file -> (row, content). When the writer stores, rows of
    # earlier chunks are found in the store (same transaction), so this holds one chunk only
    # and memory stays flat however long the file; a dry run keeps the whole file here.
    _seen: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    # Rows that repeated a record held before this batch (not stored again): key -> row.
    _repeats: dict[bytes, int] = field(default_factory=dict)
    _layout: TableLayout | None = None
    _raw: Sequence[RawRow] = ()
    # The statistics moves of the stored rows, applied by the caller after the batch's audit
    # event (hub.stats.apply_counts: the lock order of every status change).
    count_deltas: Counter[Cell] = field(default_factory=Counter)
    _pii_names: tuple[str, ...] = ()
    _clear_names: tuple[str, ...] = ()
    # With a flow (a store with routes.yaml), new records are stored on their routes at once,
    # their outbox rows queued after each chunk; `routed` counts them by status. Corrections
    # and records no route takes stay `valid` for `Flow.start_batch`.
    flow: Flow | None = None
    routed: Counter[str] = field(default_factory=Counter)
    _entering: list[tuple[bytes, Mapping[str, Any], Placement]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pii_names = self.schema.pii_fields
        self._clear_names = tuple(f for f in self.schema.fields if f not in self._pii_names)
        self._pii_values = _values_of(self._pii_names)
        self._clear_values = _values_of(self._clear_names)
        self._key_values = _values_of(self.schema.natural_key)
        self._key_domain = f"natural_key:{self.schema.record_type}"
        self._type_bytes = self.schema.record_type.encode()
        self._sources = SourceSealer(self.protector, self.schema.record_type)
        rules = self.schema.rules
        self._needs_subject = any(rule["rule"] in {"not_deceased", "death_once"} for rule in rules)
        self._death_rule = next((r for r in rules if r["rule"] == "not_deceased"), None)
        self._death_once_field = next(
            (str(r["field"]) for r in rules if r["rule"] == "death_once"), None
        )

    def source_columns(self) -> list[list[str]]:
        """The column labels of every table whose rows were sealed (`batches.source_columns`)."""
        return self._sources.columns()

    # ----------------------------------------------------------- keys

    def natural_key(self, values: Mapping[str, Any]) -> bytes:
        text = "\x1f".join(map(str, self._key_values(values)))
        return self.protector.blind_index(text, self._key_domain)

    def encode(self, i: int, values: Mapping[str, Any]) -> Encoded:
        """A valid row's stored form: clear and PII JSON (keys sorted, blanks left out), its
        natural key and a keyed hash of its content, for deduplication. `values` holds every
        field of the schema (None where blank), as `RecordValidator.validate` gives them."""
        pii_json = _json_without_blanks(self._pii_names, self._pii_values(values))
        clear_json = _json_without_blanks(self._clear_names, self._clear_values(values))
        content = self.protector.digest(clear_json + b"\x1e" + pii_json, "content")
        return Encoded(i, self.natural_key(values), content, clear_json, pii_json)

    # ----------------------------------------------------------- store lookups

    def _records_where(
        self, column: str, values: Sequence[bytes], record_type: str, *columns: str
    ) -> Iterator[tuple[Any, ...]]:
        """(`column`, *`columns`) of the records of `record_type` whose `column` is one of
        `values`; nothing without a store."""
        if self.conn is None or not values:
            return iter(())
        where = {"record_type": record_type}
        return select_in(self.conn, records, (column, *columns), where, column, values)

    def _held(self, keys: Sequence[bytes]) -> dict[bytes, Held]:
        """What the store holds under each natural key."""
        rows = self._records_where(
            "natural_key", keys, self.schema.record_type,
            "id", "content_hash", "version", "kode_wilayah", "batch_id", "row_ref",
        )  # fmt: skip
        return {
            bytes(key): Held(id_, bytes(content), version, kode, batch_id, row_ref)
            for key, id_, content, version, kode, batch_id, row_ref in rows
        }

    def _deaths(self, subjects: Sequence[bytes]) -> dict[bytes, str]:
        """Subject blind index -> date of death, for subjects reported dead."""
        rows = self._records_where("subject_bi", subjects, "kematian", "event_date")
        return {bytes(subject): died for subject, died in rows}

    # ----------------------------------------------------------- outcomes

    def accept(
        self,
        layout: TableLayout | None,
        results: Sequence[RowResult],
        extra_issues: Iterable[Issue] = (),
        raw: Sequence[RawRow] = (),
    ) -> list[Outcome]:
        """Decide and persist the outcome of each row of a chunk; the outcomes, in order.

        `raw`, the rows as read (aligned with `results`), are kept sealed with each stored
        record for its chain of custody."""
        self._layout = layout
        self._raw = raw
        candidates = [self.encode(i, r.values) for i, r in enumerate(results) if not r.error]
        if self.conn is not None and not self.dry_run:
            self._seen.clear()  # earlier chunks are in the store now
        held = self._held([c.key for c in candidates if c.key not in self._seen])
        subjects = self._subjects(results, candidates)
        deaths = self._deaths(list(subjects.values())) if self._death_rule else {}
        outcomes: list[Outcome] = ["invalid"] * len(results)
        inserts: list[tuple[Any, ...]] = []
        now = utc_now()
        for candidate in candidates:
            i = candidate.position
            subject = subjects.get(i)
            if subject is not None and self._moved_after_death(results[i], deaths.get(subject)):
                continue
            outcomes[i] = self._decide(
                results[i], candidate, held.get(candidate.key), subject, now, inserts
            )
        if self.conn is not None and not self.dry_run and inserts:
            bulk_insert(self.conn, records, RECORD_COLUMNS, inserts)
            tally_new(((r[0], r[6], r[4], r[5]) for r in inserts), self.count_deltas)
            self._queue_messages()
        self._count(results, outcomes)
        self._store_issues([*extra_issues, *(issue for r in results for issue in r.issues)])
        return outcomes

    def _subjects(
        self, results: Sequence[RowResult], candidates: Sequence[Encoded]
    ) -> dict[int, bytes]:
        """Blind index of each candidate's subject NIK, only where a rule needs it: deaths
        are looked up by subject ("is this NIK deceased?"), nothing else is."""
        subject = self.schema.subject
        if not (subject and self._needs_subject):
            return {}
        found = {}
        for candidate in candidates:
            nik = results[candidate.position].values.get(subject)
            if nik is not None:
                found[candidate.position] = self.protector.blind_index(nik, "nik")
        return found

    def _moved_after_death(self, result: RowResult, died: str | None) -> bool:
        """`not_deceased`: a NIK reported dead on or before the move cannot move."""
        rule = self._death_rule
        if rule is None or died is None:
            return False
        moved = result.values.get(rule["date_field"])
        if moved is not None and died > moved:
            return False
        nik = result.values[rule["field"]]
        self._issue(result, rule["field"], "deceased", value=nik, detail=f" pada {died}")
        return True

    def _earlier_in_file(self, key: bytes, existing: Held | None) -> tuple[int, bytes] | None:
        """(row, content) of an earlier row of this file with the same natural key."""
        earlier = self._seen.get(key)
        if earlier is not None or existing is None:
            return earlier
        if self.batch_id is not None and existing.batch_id == self.batch_id:
            return existing.row, existing.content_hash  # stored from an earlier chunk
        if key in self._repeats:  # an earlier row repeated a record held before this batch
            return self._repeats[key], existing.content_hash
        return None

    def _decide(
        self,
        result: RowResult,
        encoded: Encoded,
        existing: Held | None,
        subject: bytes | None,
        now: str,
        inserts: list[tuple[Any, ...]],
    ) -> Outcome:
        """The outcome of one row without errors; queues its insert or applies its update."""
        key, content = encoded.key, encoded.content
        earlier = self._earlier_in_file(key, existing)
        if earlier is not None:
            row, earlier_content = earlier
            if earlier_content == content:
                self._issue(
                    result, None, "duplicate_in_file", severity="warning", other_row=row, detail=""
                )
                return "duplicate"
            detail = " tetapi isinya berbeda; hapus salah satunya"
            self._issue(result, None, "duplicate_in_file", other_row=row, detail=detail)
            return "invalid"
        if existing is not None and existing.content_hash == content:
            self._seen[key] = (result.provenance.row, content)
            if self.conn is not None and not self.dry_run:
                self._repeats[key] = result.provenance.row
            detail = f"rekaman #{existing.id} versi {existing.version}"
            self._issue(result, None, "duplicate", severity="warning", detail=detail)
            return "duplicate"
        death_field = self._death_once_field
        if (
            existing is not None
            and death_field is not None
            and existing.kode_wilayah != result.values[self.schema.wilayah_field]
        ):
            # A death already reported by another region is not a correction of it.
            # Not noted as seen: a copy of this row further down is refused the same way,
            # not counted as a harmless repeat of it.
            nik = result.values[death_field]
            detail = f" oleh wilayah {existing.kode_wilayah}"
            self._issue(result, death_field, "deceased", value=nik, detail=detail)
            return "invalid"
        self._seen[key] = (result.provenance.row, content)
        self.digest.update(key + content)
        if existing is not None:
            self._correct(existing, result, encoded, subject, now)
        else:
            placed = self._place(result, encoded)
            inserts.append(self._row(result, encoded, subject, 1, now, *placed))
        return "valid"

    def _count(self, results: Sequence[RowResult], outcomes: Sequence[Outcome]) -> None:
        counts = self.counts
        counts.rows += len(results)
        counts.valid += outcomes.count("valid")
        counts.duplicates += outcomes.count("duplicate")
        counts.invalid += outcomes.count("invalid")
        counts.warnings += sum(1 for result in results if result.issues and result.warning)

    def _issue(
        self,
        result: RowResult,
        name: str | None,
        code: str,
        *,
        severity: Severity = "error",
        **params: Any,
    ) -> None:
        if code == "deceased":
            nik = str(params["value"])
            params["masked"] = f"{nik[:4]}{'*' * 8}{nik[-4:]}"
        self.validator.issue(result, self._layout, name, code, severity, params)

    def _place(self, result: RowResult, encoded: Encoded) -> tuple[str, str | None, int | None]:
        """(status, route, step) of a new record: where its route takes it, with a flow."""
        if self.flow is None or self.conn is None or self.dry_run:
            return "valid", None, None
        values = result.values
        placed = self.flow.place_new(
            self.schema.record_type, values[self.schema.wilayah_field], values
        )
        if placed is None:
            return "valid", None, None
        route, placement = placed
        self.routed[placement.status] += 1
        if placement.messages:
            self._entering.append((encoded.key, values, placement))
        return placement.status, route.name, placement.step

    def _queue_messages(self) -> None:
        """The outbox rows of the new records just stored on their routes."""
        if not self._entering or self.flow is None or self.conn is None:
            return
        schema = self.schema
        keys = [key for key, _, _ in self._entering]
        where = {"record_type": schema.record_type}
        ids = {
            bytes(key): id_
            for key, id_ in select_in(
                self.conn, records, ("natural_key", "id"), where, "natural_key", keys
            )
        }
        now = utc_timestamp(self.flow.now())
        messages: list[tuple[Any, ...]] = []
        for key, values, placement in self._entering:
            record = EnteringRecord(ids[key], schema.record_type, schema.version, key, 1)
            messages += self.flow.new_messages(record, values, placement, now)
        self._entering.clear()
        bulk_insert(self.conn, outbox, OUTBOX_COLUMNS, messages)

    def _row(
        self,
        result: RowResult,
        encoded: Encoded,
        subject: bytes | None,
        version: int,
        now: str,
        status: str = "valid",
        route: str | None = None,
        step: int | None = None,
    ) -> tuple[Any, ...]:
        schema, values = self.schema, result.values
        aad = self._type_bytes + encoded.key
        return (
            schema.record_type,
            schema.version,
            encoded.key,
            subject,
            values[schema.wilayah_field],
            values.get(schema.event_date) if schema.event_date else None,
            status,
            version,
            self.batch_id,
            result.provenance.position[:300],
            encoded.clear_json.decode(),
            self.protector.encrypt(encoded.pii_json, aad),
            encoded.content,
            now,
            now,
            self._sources.seal(self._layout, self._raw, encoded.position, encoded.key),
            route,
            step,
        )

    def _correct(
        self,
        held: Held,
        result: RowResult,
        encoded: Encoded,
        subject: bytes | None,
        now: str,
    ) -> None:
        """A held record whose content changed: keep the old version in history, store the new."""
        self.counts.corrected += 1
        if self.conn is None or self.dry_run:
            return
        old = self.conn.execute(sa.select(records).where(records.c.id == held.id)).one()
        self.conn.execute(
            record_history.insert().values(
                record_id=held.id,
                version=old.version,
                status=old.status,
                batch_id=old.batch_id,
                row_ref=old.row_ref,
                data=old.data,
                pii=old.pii,
                content_hash=old.content_hash,
                source_cells=old.source_cells,
                replaced_at=now,
            )
        )
        row = dict(
            zip(
                RECORD_COLUMNS,
                self._row(result, encoded, subject, held.version + 1, now),
                strict=True,
            )
        )
        row.pop("created_at")
        self.conn.execute(records.update().where(records.c.id == held.id).values(**row))
        tally(
            [
                Move(old.record_type, old.kode_wilayah, old.event_date, old.status, None),
                Move(old.record_type, row["kode_wilayah"], row["event_date"], None, row["status"]),
            ],
            self.count_deltas,
        )

    def _store_issues(self, issues: Sequence[Issue]) -> None:
        if self.conn is None or self.dry_run or not issues or self.batch_id is None:
            return
        encrypt = self.protector.encrypt
        rows = [
            (
                self.batch_id,
                issue.row,
                issue.sheet,
                issue.col,
                issue.column[:255] if issue.column else None,
                issue.field,
                issue.code,
                issue.severity,
                issue.message,
                encrypt(issue.value.encode(), b"issue") if issue.value is not None else None,
            )
            for issue in issues
        ]
        bulk_insert(self.conn, row_issues, ISSUE_COLUMNS, rows)


def _values_of(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `names` in a mapping, as a tuple (in C: `itemgetter`)."""
    if len(names) == 1:
        only = names[0]
        return lambda values: (values[only],)
    if not names:
        return lambda values: ()
    return itemgetter(*names)


def _json_without_blanks(names: Sequence[str], values: tuple[Any, ...]) -> bytes:
    """JSON of the non-None `values` under their `names`, keys sorted."""
    if None in values:
        pairs = {k: v for k, v in zip(names, values, strict=True) if v is not None}
    else:
        pairs = dict(zip(names, values, strict=True))
    return orjson.dumps(pairs, option=orjson.OPT_SORT_KEYS)
