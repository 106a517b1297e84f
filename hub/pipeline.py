"""read -> map -> normalise -> validate -> dedupe -> persist, for one input.

```python
report = run_batch(hub, CSVSource({"path": "lahir.csv"}), "kelahiran", scope="32.73.01.1001")
report.counts.valid, report.issues[0].message
```

A file is ingested in ONE transaction: either every row's outcome is stored with the batch,
its issues and its audit event, or (the file turned out unreadable half-way, the process
died) nothing is, and a failed batch is recorded instead. A dry run reads the store for
duplicates but writes nothing.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from adapters.base import Source
from hub.audit import AuditLog
from hub.batch import BatchWriter, Counts, utc_now
from hub.context import Hub
from hub.errors import HubError, UnreadableFileError
from hub.flow import Flow
from hub.layout import TableLayout, iter_data_chunks
from hub.observe.metrics import BATCHES, ROW_ISSUES, ROWS, STAGE_SECONDS
from hub.records import Issue, RawRow
from hub.registry import load_adapter
from hub.stats import apply_counts
from hub.store.tables import batches
from hub.validate import RecordValidator

#: Rows validated and stored together: enough to amortise the per-chunk queries, few enough
#: that memory stays flat however long the file.
CHUNK_ROWS = 5000
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"})


@dataclass
class BatchReport:
    """What happened to one input: the CLI's JSON report."""

    file: str
    record_type: str
    counts: Counts
    issues: list[Issue]
    batch_id: int | None = None
    skipped_sheets: list[str] = field(default_factory=list)
    routed: dict[str, int] = field(default_factory=dict)  # new status -> records

    @property
    def corrected(self) -> int:
        """Valid rows that were new versions of held records."""
        return self.counts.corrected

    @property
    def has_errors(self) -> bool:
        return self.counts.invalid > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "type": self.record_type,
            "batch_id": self.batch_id,
            **self.counts.as_dict(),
            "corrected": self.corrected,
            "skipped_sheets": self.skipped_sheets,
            "routed": self.routed,
            "issues": [issue.as_dict() for issue in self.issues],
        }


def source_for(path: Path, *, sheet: str | None = None) -> Source:
    """An Excel or CSV source for a file, chosen by its first bytes, not its name."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(8)
    except OSError as exc:
        raise UnreadableFileError(
            f"Berkas {path.name} tidak dapat dibuka: {exc.strerror}."
        ) from exc
    is_workbook = magic.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))
    if is_workbook or (not magic and path.suffix.lower() in EXCEL_SUFFIXES):
        config: dict[str, Any] = {"path": str(path)}
        if sheet is not None:
            config["sheet"] = sheet
        return load_adapter("excel")(config)
    return load_adapter("csv")({"path": str(path)})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def fewer_collections(threshold: int = 200_000) -> Iterator[None]:
    """Run the cyclic garbage collector less often while a batch runs.

    A batch allocates millions of short-lived, acyclic objects (cells, dicts, tuples) that
    reference counting frees at once; the default threshold (700 allocations) makes the
    collector walk every live object again and again, about 30 % of validation time.
    """
    before = gc.get_threshold()
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def run_batch(
    hub: Hub,
    source: Source,
    record_type: str,
    *,
    scope: str | None = None,
    dry_run: bool = False,
    actor: str = "cli",
    file_name: str = "",
    sha256: str | None = None,
    progress: Callable[[int], None] | None = None,
    batch_id: int | None = None,
) -> BatchReport:
    """Validate one input and, unless `dry_run`, store its outcome.

    `batch_id` names a batch row created beforehand (status `queued`, e.g. by an upload that
    answers before processing): it is filled instead of a new one being inserted.
    """
    schema = hub.schemas.get(record_type)
    validator = RecordValidator(schema, regions=hub.regions, messages=hub.messages, scope=scope)
    skipped: list[str] = []
    issues: list[Issue] = []
    # a header that is plainly another record type's is refused, not read as this one
    others = [hub.schemas.get(t) for t in hub.schemas.types() if t != record_type]
    name = file_name or str(source.config.get("path", source.name))

    def process(writer: BatchWriter) -> None:
        chunks = iter_data_chunks(
            source.read(),
            schema,
            CHUNK_ROWS,
            skipped_parts=skipped,
            alternatives=others,
            require_rows=source.is_report,
        )
        with fewer_collections():
            _process_chunks(writer, chunks)

    def _process_chunks(
        writer: BatchWriter, chunks: Iterator[tuple[TableLayout, list[RawRow]]]
    ) -> None:
        clock = time.perf_counter()
        previous: TableLayout | None = None
        for layout, chunk in chunks:
            clock = _stage("read", clock)
            extra = validator.layout_issues(layout) if layout is not previous else []
            previous = layout
            results = validator.validate(layout, chunk)
            clock = _stage("validate", clock)
            writer.accept(layout, results, extra, raw=chunk)
            clock = _stage("store", clock)
            issues.extend(extra)
            for result in results:
                issues.extend(result.issues)
            if progress is not None:
                progress(writer.counts.rows)

    if dry_run:
        with hub.engine.connect() as conn:
            writer = BatchWriter(schema, validator, hub.protector, conn, dry_run=True)
            process(writer)
            conn.rollback()
        return BatchReport(name, record_type, writer.counts, issues, None, skipped)

    started = utc_now()
    batch_values = {
        "record_type": record_type,
        "schema_version": schema.version,
        "source": source.name,
        "file_name": name[:255],
        "file_sha256": sha256,
        "kelurahan": scope,
        "actor": actor,
        "created_at": started,
    }
    routes = hub.routes  # an invalid routes.yaml stops here, before anything is stored
    flow = None if routes is None else Flow(routes, hub.schemas, hub.protector, hub.messages)
    routed: dict[str, int] = {}
    given_id = batch_id
    if given_id is not None:
        with hub.engine.begin() as conn:  # visible as `processing` while the batch runs
            conn.execute(
                batches.update()
                .where(batches.c.id == given_id)
                .values(status="processing", **_refill(batch_values))
            )
    try:
        with hub.engine.begin() as conn:
            if batch_id is None:
                batch_id = conn.execute(
                    batches.insert()
                    .values(status="processing", **batch_values)
                    .returning(batches.c.id)
                ).scalar_one()
            writer = BatchWriter(
                schema, validator, hub.protector, conn, batch_id=batch_id, flow=flow
            )
            process(writer)
            counts = writer.counts
            conn.execute(
                batches.update()
                .where(batches.c.id == batch_id)
                .values(
                    status="done",
                    finished_at=utc_now(),
                    source_columns=orjson.dumps(writer.source_columns()).decode(),
                    **counts.as_dict(),
                )
            )
            AuditLog.record(
                conn,
                actor=actor,
                action="batch.ingested",
                entity_type="batch",
                entity_id=str(batch_id),
                details={
                    "record_type": record_type,
                    "schema": schema.schema_id,
                    "file_sha256": sha256,
                    **counts.as_dict(),
                    "corrected": counts.corrected,
                    "records_digest": writer.digest.hexdigest(),
                },
            )
            apply_counts(conn, writer.count_deltas)  # after the audit head: see hub.stats
            if flow is not None:
                # new records entered their routes as they were stored; the rest enter here
                clock = time.perf_counter()
                routed = flow.start_batch(conn, batch_id, actor=actor, entered=writer.routed)
                _stage("route", clock)
    except HubError as exc:
        _record_failure(hub, batch_values, exc, given_id)
        BATCHES.labels(record_type, "failed").inc()
        raise
    _count(record_type, counts, issues)
    return BatchReport(name, record_type, counts, issues, batch_id, skipped, routed)


def _stage(name: str, since: float) -> float:
    """Note the time spent in a pipeline stage since `since`; the clock now."""
    now = time.perf_counter()
    STAGE_SECONDS.labels(name).observe(now - since)
    return now


def _count(record_type: str, counts: Counts, issues: list[Issue]) -> None:
    """The metrics of a stored batch: rows by outcome, issues by code (hub.observe)."""
    BATCHES.labels(record_type, "done").inc()
    for outcome, number in (
        ("valid", counts.valid),
        ("invalid", counts.invalid),
        ("duplicate", counts.duplicates),
    ):
        if number:
            ROWS.labels(record_type, outcome).inc(number)
    by_code = Counter((issue.code, issue.severity) for issue in issues)
    for (code, severity), number in by_code.items():
        ROW_ISSUES.labels(record_type, code, severity).inc(number)


def _refill(batch_values: dict[str, Any]) -> dict[str, Any]:
    """What a batch created beforehand takes from this run: not its creation time."""
    return {k: v for k, v in batch_values.items() if k != "created_at"}


def _record_failure(
    hub: Hub, batch_values: dict[str, Any], exc: HubError, batch_id: int | None = None
) -> None:
    """Nothing of the input was kept; leave a failed batch and its audit event behind."""
    failed = {"status": "failed", "error": str(exc)[:2000], "finished_at": utc_now()}
    with hub.engine.begin() as conn:
        if batch_id is not None:
            conn.execute(
                batches.update()
                .where(batches.c.id == batch_id)
                .values(**failed, **_refill(batch_values))
            )
        else:
            batch_id = conn.execute(
                batches.insert().values(**failed, **batch_values).returning(batches.c.id)
            ).scalar_one()
        AuditLog.record(
            conn,
            actor=batch_values["actor"],
            action="batch.failed",
            entity_type="batch",
            entity_id=str(batch_id),
            details={"record_type": batch_values["record_type"], "error": type(exc).__name__},
        )
