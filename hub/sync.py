"""Run one legacy-database source once: pages in, records stored, position advanced with them.

```python
report = run_source(hub, hub.routes.sources["coblong_lahir"])
report.counts.valid, report.deleted, report.position
```

Each page of the source (`adapters.sqlserver`) becomes one batch that goes through the same
pipeline as an uploaded file (`hub.pipeline.run_batch`: header aliases, normalisers,
validation, deduplication against the store, PII sealing, routing, audit). Before the batch
runs, its row is created as `queued` together with a `sync_pages` row holding the position
after the page; the position counts only once that batch is `done`, and `done` is written in
the transaction that commits the page's records. So:

- a crash (or any error) between fetching a page and committing it leaves the batch unfinished
  and the position where it was: the next run marks the batch failed (`abandoned`) and reads
  the same page again. No row is lost, none is stored twice;
- a row read twice (re-read after a crash, a full re-read, a cursor tie) is a `duplicate` of
  the held record, or a correction when it changed upstream.

Rows deleted upstream are reported, never applied: Change Tracking names them; for `cursor`
and `full` sources the keys the hub holds (`sync_keys`) are compared with the source's keys
after each run. Each deletion is a `sync_deletions` row and the run's audit event counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.base import Source
from hub.audit import AuditLog
from hub.batch import Counts, utc_now
from hub.context import Hub
from hub.errors import ConfigError
from hub.pipeline import run_batch
from hub.records import RawRow
from hub.registry import load_class
from hub.routes import SourceConfig
from hub.store.tables import batches, sync_deletions, sync_keys, sync_pages

if TYPE_CHECKING:
    from adapters.sqlserver.source import Page

#: Source adapters by the `adapter` name of `routes.yaml` `sources:`.
SOURCES: Final[Mapping[str, str]] = {
    "sqlserver": "adapters.sqlserver.source:SQLServerSource",
}
KEY_CHUNK: Final = 500  # keys per statement (SQLite bound-parameter limits)
ABANDONED: Final = "abandoned: the process stopped before the page was committed"


class PagedSource(Protocol):
    """What a sync needs of a source (`adapters.sqlserver.source.SQLServerSource`)."""

    name: ClassVar[str]
    strategy: str
    key_scan_advised: bool

    def pages(self, position: Mapping[str, Any] | None) -> Iterator[Page]: ...

    def upstream_keys(self) -> Iterator[int]: ...

    def close(self) -> None: ...


@dataclass
class SyncReport:
    """What one run of a source did."""

    source: str
    record_type: str
    strategy: str
    pages: int = 0
    batches: list[int] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    corrected: int = 0
    deleted: int = 0
    reread: bool = False
    reread_reason: str | None = None
    position: Mapping[str, Any] | None = None
    abandoned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "type": self.record_type,
            "strategy": self.strategy,
            "pages": self.pages,
            "batches": self.batches,
            **self.counts.as_dict(),
            "corrected": self.corrected,
            "deleted_upstream": self.deleted,
            "reread": self.reread,
            "reread_reason": self.reread_reason,
            "abandoned_batches": self.abandoned,
            "position": dict(self.position) if self.position is not None else None,
        }


class _PageSource(Source):
    """One page as a pipeline source: its header, then its rows."""

    name: ClassVar[str] = "sqlserver"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(self, page: Page) -> None:
        super().__init__({})
        self.page = page

    def read(self, bookmark: str | None = None) -> Iterator[RawRow]:
        yield self.page.header
        yield from self.page.rows


def build_source(config: SourceConfig) -> PagedSource:
    """The adapter of a `sources:` entry, not yet connected."""
    cls = load_class(SOURCES, config.adapter, Source, "source adapter")
    source: PagedSource = cls(config.as_adapter_config())
    return source


def current_position(conn: sa.Connection, source_name: str) -> dict[str, Any] | None:
    """The position after the last page whose batch is done (None: nothing pulled yet)."""
    row = conn.execute(
        sa.select(sync_pages.c.position)
        .join(batches, batches.c.id == sync_pages.c.batch_id)
        .where(sync_pages.c.source == source_name, batches.c.status == "done")
        .order_by(sync_pages.c.batch_id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    position: dict[str, Any] = orjson.loads(row.position)
    return position


def abandon_unfinished(conn: sa.Connection, source_name: str) -> int:
    """Mark the batches of pages an earlier run did not commit as failed; their count.

    Call only while holding the source's job lock: a running sync's pages look the same."""
    unfinished = [
        row.batch_id
        for row in conn.execute(
            sa.select(sync_pages.c.batch_id)
            .join(batches, batches.c.id == sync_pages.c.batch_id)
            .where(
                sync_pages.c.source == source_name,
                batches.c.status.in_(("queued", "processing")),
            )
        )
    ]
    if unfinished:
        conn.execute(
            batches.update()
            .where(batches.c.id.in_(unfinished))
            .values(status="failed", error=ABANDONED, finished_at=utc_now())
        )
    return len(unfinished)


def run_source(
    hub: Hub,
    config: SourceConfig,
    *,
    actor: str = "sync",
    source: PagedSource | None = None,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Pull everything new from one source; see the module docstring.

    `source` replaces the adapter built from `config` (tests pass one with fake Change
    Tracking versions); `progress` is called inside each page's transaction (tests use it to
    stop a run between fetching and committing).
    """
    schema = hub.schemas.get(config.record_type)
    report = SyncReport(config.name, schema.record_type, config.strategy)
    with hub.engine.begin() as conn:
        report.abandoned = abandon_unfinished(conn, config.name)
        position = current_position(conn, config.name)
    report.position = position
    opened = source if source is not None else build_source(config)
    try:
        for page in opened.pages(position):
            _commit_page(hub, config, page, report, actor=actor, progress=progress)
            if page.reread and not report.reread:
                report.reread = True
                report.reread_reason = getattr(opened, "reread_reason", None)
        if config.delete_scan and opened.key_scan_advised:
            missing = _missing_keys(hub, config.name, opened.upstream_keys())
            report.deleted += _report_deletions(hub, config, missing, "missing", actor)
    finally:
        if source is None:
            opened.close()
    return report


def _commit_page(
    hub: Hub,
    config: SourceConfig,
    page: Page,
    report: SyncReport,
    *,
    actor: str,
    progress: Callable[[int], None] | None,
) -> None:
    schema = hub.schemas.get(config.record_type)
    file_name = f"{config.name}:{config.locator}"[:255]
    now = utc_now()
    with hub.engine.begin() as conn:
        batch_id = conn.execute(
            batches.insert()
            .values(
                record_type=schema.record_type,
                schema_version=schema.version,
                source=_PageSource.name,
                file_name=file_name,
                kelurahan=config.kelurahan,
                status="queued",
                actor=actor,
                created_at=now,
            )
            .returning(batches.c.id)
        ).scalar_one()
        conn.execute(
            sync_pages.insert().values(
                batch_id=batch_id,
                source=config.name,
                position=orjson.dumps(dict(page.position)).decode(),
                rows=len(page.rows),
                created_at=now,
            )
        )
        _upsert_keys(conn, config.name, page.keys, now)
    if page.deleted:
        report.deleted += _report_deletions(hub, config, page.deleted, "change_tracking", actor)
    result = run_batch(
        hub,
        _PageSource(page),
        schema.record_type,
        scope=config.kelurahan,
        actor=actor,
        file_name=file_name,
        batch_id=batch_id,
        progress=progress,
    )
    report.pages += 1
    report.batches.append(batch_id)
    for name, value in result.counts.as_dict().items():
        setattr(report.counts, name, getattr(report.counts, name) + value)
    report.corrected += result.corrected
    report.position = page.position


# ---------------------------------------------------------------- upstream keys, deletions


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _upsert_keys(conn: sa.Connection, source: str, keys: Sequence[int], now: str) -> None:
    """Remember the keys a page delivered; a key seen again is no longer deleted."""
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start : start + KEY_CHUNK]
        insert = _insert(conn, sync_keys)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["source", "key"],
                set_={"seen_at": insert.excluded.seen_at, "deleted_at": None},
            ),
            [{"source": source, "key": key, "seen_at": now, "deleted_at": None} for key in chunk],
        )


def _missing_keys(hub: Hub, source: str, upstream: Iterator[int]) -> list[int]:
    """Keys the hub holds for `source` that the source no longer has (a merge of two sorted
    streams: memory holds only what is missing)."""
    missing: list[int] = []
    with hub.engine.connect() as conn:
        held = conn.execution_options(yield_per=10_000).execute(
            sa.select(sync_keys.c.key)
            .where(sync_keys.c.source == source, sync_keys.c.deleted_at.is_(None))
            .order_by(sync_keys.c.key)
        )
        theirs = next(upstream, None)
        for (ours,) in held:
            while theirs is not None and theirs < ours:
                theirs = next(upstream, None)
            if theirs != ours:
                missing.append(int(ours))
    return missing


def _report_deletions(
    hub: Hub, config: SourceConfig, keys: Sequence[int], via: str, actor: str
) -> int:
    """Record keys deleted upstream (each once); the number newly reported."""
    if not keys:
        return 0
    now = utc_now()
    reported = 0
    with hub.engine.begin() as conn:
        for start in range(0, len(keys), KEY_CHUNK):
            chunk = list(dict.fromkeys(keys[start : start + KEY_CHUNK]))
            known = {
                row.key
                for row in conn.execute(
                    sa.select(sync_keys.c.key).where(
                        sync_keys.c.source == config.name,
                        sync_keys.c.key.in_(chunk),
                        sync_keys.c.deleted_at.is_not(None),
                    )
                )
            }
            fresh = [key for key in chunk if key not in known]
            if not fresh:
                continue
            insert = _insert(conn, sync_keys)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["source", "key"], set_={"deleted_at": now}
                ),
                [
                    {"source": config.name, "key": k, "seen_at": now, "deleted_at": now}
                    for k in fresh
                ],
            )
            conn.execute(
                sync_deletions.insert(),
                [
                    {
                        "source": config.name,
                        "locator": config.locator[:255],
                        "key": key,
                        "via": via,
                        "detected_at": now,
                    }
                    for key in fresh
                ],
            )
            reported += len(fresh)
        if reported:
            AuditLog.record(
                conn,
                actor=actor,
                action="sync.deleted_upstream",
                entity_type="source",
                entity_id=config.name,
                details={"locator": config.locator, "via": via, "rows": reported},
            )
    return reported


@dataclass(frozen=True, slots=True)
class Deletion:
    """A row deleted upstream, as `hub sync --deletions` lists it."""

    source: str
    locator: str
    key: int
    via: str
    detected_at: str


def deletions(conn: sa.Connection, source: str, *, limit: int = 100) -> list[Deletion]:
    """The most recent deletions reported for `source`."""
    rows = conn.execute(
        sa.select(sync_deletions)
        .where(sync_deletions.c.source == source)
        .order_by(sync_deletions.c.id.desc())
        .limit(limit)
    )
    return [Deletion(r.source, r.locator, r.key, r.via, r.detected_at) for r in rows]


def source_config(hub: Hub, name: str) -> SourceConfig:
    """The `sources:` entry called `name`; `ConfigError` naming the known ones otherwise."""
    routes = hub.routes
    sources = routes.sources if routes is not None else {}
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise ConfigError(f"no source named {name!r} in routes.yaml (known: {known})")
    return sources[name]
