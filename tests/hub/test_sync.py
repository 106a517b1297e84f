"""hub.sync: a legacy register pulled through real ODBC drivers into the hub's store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from adapters.sqlserver.source import SQLServerSource
from hub.context import Hub
from hub.errors import SourceError
from hub.routes import SourceConfig
from hub.store.tables import (
    audit_events,
    batches,
    record_history,
    records,
    row_issues,
    sync_deletions,
    sync_keys,
)
from hub.sync import current_position, run_source
from tests.adapters.legacy_db import MAPPING, LegacyDB, birth, open_legacy

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def legacy(database_url: str, tmp_path: Path) -> Iterator[LegacyDB]:
    """The legacy register on the same kind of database as the hub's store."""
    kind = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    yield from open_legacy(kind, tmp_path)


def source_config(db: LegacyDB, **changes: Any) -> SourceConfig:
    config = SourceConfig(
        name="coblong",
        adapter="sqlserver",
        record_type="kelahiran",
        key="NO_REG",
        strategy="cursor",
        cursor_column="RV",
        connection=db.connection,
        table=db.table,
        columns=MAPPING,
        page_rows=4,
    )
    return dataclasses.replace(config, **changes)


def stored(hub: Hub) -> list[Any]:
    with hub.engine.connect() as conn:
        return list(conn.execute(sa.select(records).order_by(records.c.id)))


def test_initial_load_normalises_legacy_columns_with_provenance(hub: Hub, legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 11)])
    report = run_source(hub, source_config(legacy))
    assert (report.pages, report.counts.rows, report.counts.valid) == (3, 10, 10)
    assert report.counts.invalid == report.counts.duplicates == 0
    rows = stored(hub)
    assert len(rows) == 10
    assert [r.row_ref for r in rows[:2]] == [
        f"coblong:{legacy.table}#1",
        f"coblong:{legacy.table}#2",
    ]
    data = orjson.loads(rows[0].data)
    assert data["kode_wilayah"] == "32.73.01.1001"  # four numeric columns joined
    assert data["tanggal_lahir"] == "2025-08-17"  # "17/08/2025" as text
    assert data["jenis_kelamin"] == "P"  # 2 in JENIS_KLMIN
    assert data["kelahiran_ke"] == 1
    with hub.engine.connect() as conn:
        assert current_position(conn, "coblong") == {
            "strategy": "cursor",
            "cursor": {"t": "int", "v": 10},
            "key": 10,
        }
        sources = conn.execute(sa.select(batches.c.source, batches.c.status, batches.c.file_name))
        assert {tuple(r) for r in sources} == {("sqlserver", "done", f"coblong:{legacy.table}")}
        keys = conn.execute(sa.select(sync_keys.c.key).order_by(sync_keys.c.key)).scalars()
        assert list(keys) == list(range(1, 11))


def test_incremental_pull_takes_only_inserts_and_updates(hub: Hub, legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 6)])
    run_source(hub, source_config(legacy))
    legacy.insert([birth(6), birth(7)])
    legacy.update(3, NAMA_LGKP="ANAK TIGA DIPERBAIKI")
    report = run_source(hub, source_config(legacy))
    assert (report.counts.rows, report.counts.valid, report.corrected) == (3, 3, 1)
    assert len(stored(hub)) == 7
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(record_history)).scalar() == 1
    again = run_source(hub, source_config(legacy))
    assert (again.pages, again.counts.rows) == (0, 0)


def test_ties_on_the_cursor_across_a_page_boundary(hub: Hub, legacy: LegacyDB):
    """Seven rows share one cursor value and pages hold three: every row once."""
    legacy.insert([birth(reg) for reg in range(1, 8)], rv=50)
    report = run_source(hub, source_config(legacy, page_rows=3))
    assert (report.pages, report.counts.valid, report.counts.duplicates) == (3, 7, 0)
    # Rows arriving later with the same cursor value but higher keys are not skipped.
    legacy.insert([birth(8), birth(9)], rv=50)
    later = run_source(hub, source_config(legacy, page_rows=3))
    assert (later.counts.rows, later.counts.valid, later.counts.duplicates) == (2, 2, 0)
    assert sorted(int(r.row_ref.rsplit("#", 1)[1]) for r in stored(hub)) == list(range(1, 10))


class Crash(BaseException):
    """The process dies: not an error the hub handles, the transaction is simply gone."""


def test_crash_between_fetching_and_committing_loses_and_doubles_nothing(
    hub: Hub, legacy: LegacyDB
):
    legacy.insert([birth(reg) for reg in range(1, 11)])
    pages = []

    def die_on_second_page(rows: int) -> None:
        pages.append(rows)
        if len(pages) == 2:
            raise Crash

    with pytest.raises(Crash):
        run_source(hub, source_config(legacy), progress=die_on_second_page)
    assert len(stored(hub)) == 4  # only the first page committed
    with hub.engine.connect() as conn:
        assert current_position(conn, "coblong")["key"] == 4
        statuses = conn.execute(sa.select(batches.c.status).order_by(batches.c.id)).scalars()
        assert list(statuses) == ["done", "processing"]
    report = run_source(hub, source_config(legacy))
    assert report.abandoned == 1
    assert (report.counts.rows, report.counts.valid, report.counts.duplicates) == (6, 6, 0)
    rows = stored(hub)
    assert len(rows) == 10 == len({r.natural_key for r in rows})
    with hub.engine.connect() as conn:
        failed = conn.execute(sa.select(batches.c.error).where(batches.c.status == "failed"))
        assert [e.startswith("abandoned") for (e,) in failed] == [True]


def test_rows_deleted_upstream_are_reported_once(hub: Hub, legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 6)])
    run_source(hub, source_config(legacy))
    legacy.delete(2)
    legacy.delete(5)
    report = run_source(hub, source_config(legacy))
    assert report.deleted == 2
    assert len(stored(hub)) == 5  # reported, not applied
    again = run_source(hub, source_config(legacy))
    assert again.deleted == 0
    with hub.engine.connect() as conn:
        found = conn.execute(sa.select(sync_deletions.c.key, sync_deletions.c.via)).all()
        assert sorted(found) == [(2, "missing"), (5, "missing")]
        audit = conn.execute(
            sa.select(audit_events.c.details).where(
                audit_events.c.action == "sync.deleted_upstream"
            )
        ).scalars()
        assert [orjson.loads(d)["rows"] for d in audit] == [2]
    legacy.insert([birth(5)])  # the row comes back: no longer deleted
    run_source(hub, source_config(legacy))
    with hub.engine.connect() as conn:
        back = conn.execute(sa.select(sync_keys.c.deleted_at).where(sync_keys.c.key == 5))
        assert back.scalar_one() is None


def test_delete_scan_can_be_turned_off(hub: Hub, legacy: LegacyDB):
    legacy.insert([birth(1), birth(2)])
    run_source(hub, source_config(legacy))
    legacy.delete(1)
    assert run_source(hub, source_config(legacy, delete_scan=False)).deleted == 0


def test_full_strategy_rereads_everything_and_deduplicates(hub: Hub, legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 9)])
    config = source_config(legacy, strategy="full", cursor_column=None)
    first = run_source(hub, config)
    # Two full pages, then an empty one that closes the read (its position says "done").
    assert (first.counts.valid, first.pages) == (8, 3)
    second = run_source(hub, config)
    assert (second.counts.rows, second.counts.duplicates, second.counts.valid) == (8, 8, 0)
    legacy.update(4, NAMA_LGKP_IBU="SITI AMINAH BINTI ALI")
    legacy.delete(8)
    third = run_source(hub, config)
    assert (third.counts.valid, third.corrected, third.deleted) == (1, 1, 1)


def test_invalid_legacy_values_are_reported_by_register_number(hub: Hub, legacy: LegacyDB):
    bad = birth(3) | {"TGL_LHR": "31/02/2025", "NO_KEL": 9999}
    legacy.insert([birth(1), birth(2), bad])
    report = run_source(hub, source_config(legacy))
    assert (report.counts.valid, report.counts.invalid) == (2, 1)
    with hub.engine.connect() as conn:
        issues = conn.execute(sa.select(row_issues.c.row, row_issues.c.code, row_issues.c.sheet))
        found = {(r.row, r.code) for r in issues}
    assert {(3, "date_invalid"), (3, "wilayah_unknown")} <= found


class FakeVersions:
    """Change Tracking's two version queries, answered by the test (SQL Server cannot run
    here); everything else goes through the real ODBC driver with the generic dialect."""

    def __init__(self, min_valid: int, current: int) -> None:
        self.min_valid, self.current = min_valid, current

    def current_version(self, cursor: Any) -> int | None:
        return self.current

    def min_valid_version(self, cursor: Any, table: str) -> int | None:
        return self.min_valid


def ct_source(db: LegacyDB, versions: FakeVersions, **extra: Any) -> SQLServerSource:
    config = source_config(db, strategy="change_tracking", cursor_column=None, dialect="generic")
    adapter = config.as_adapter_config() | extra
    return SQLServerSource(adapter, versions=versions)


def test_stale_change_tracking_version_falls_back_to_a_full_reread(hub: Hub, legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 8)])
    config = source_config(legacy, strategy="change_tracking", cursor_column=None)
    first = run_source(hub, config, source=ct_source(legacy, FakeVersions(3, 40)))
    assert (first.reread, first.counts.valid) == (True, 7)  # no version yet: initial load
    assert first.position == {"strategy": "change_tracking", "version": 40}
    legacy.insert([birth(8)])
    legacy.delete(1)
    # The server has since cleaned up change history past version 40: re-read everything.
    stale = run_source(hub, config, source=ct_source(legacy, FakeVersions(55, 61)))
    assert stale.reread
    assert "40" in (stale.reread_reason or "")
    assert (stale.counts.rows, stale.counts.valid, stale.counts.duplicates) == (7, 1, 6)
    assert stale.deleted == 1  # deletions during the gap are found by comparing keys
    with hub.engine.connect() as conn:
        assert current_position(conn, "coblong") == {"strategy": "change_tracking", "version": 61}


def test_an_interrupted_reread_resumes_where_it_stopped(hub: Hub, legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 11)])
    config = source_config(legacy, strategy="change_tracking", cursor_column=None)
    calls = []

    def die_on_third_page(rows: int) -> None:
        calls.append(rows)
        if len(calls) == 3:
            raise Crash

    with pytest.raises(Crash):
        run_source(
            hub, config, source=ct_source(legacy, FakeVersions(1, 9)), progress=die_on_third_page
        )
    with hub.engine.connect() as conn:
        assert current_position(conn, "coblong") == {
            "strategy": "change_tracking",
            "reread": {"upto": 9, "after": 8},
        }
    # The versions moved on meanwhile; the interrupted re-read still finishes up to 9.
    report = run_source(hub, config, source=ct_source(legacy, FakeVersions(1, 30)))
    assert (report.counts.valid, report.counts.duplicates) == (2, 0)
    assert report.position == {"strategy": "change_tracking", "version": 9}
    assert len(stored(hub)) == 10


def test_change_tracking_needs_sql_server(hub: Hub, legacy: LegacyDB):
    config = source_config(legacy, strategy="change_tracking", cursor_column=None)
    with pytest.raises(SourceError, match="hanya untuk SQL Server"):
        run_source(hub, config)
