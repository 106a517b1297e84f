"""The store-floor peer writes exactly what `hub ingest` stored, with the hub's settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from starlette.datastructures import Secret

from bench.peers import _child_calamine, _child_csv_read, _child_sqlite_store
from hub.context import Hub
from hub.pipeline import run_batch, source_for
from hub.settings import Settings
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_table
from tests.conftest import TEST_KEY


def test_the_store_peer_writes_the_batch_again(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    settings = Settings(f"sqlite:///{db}", tmp_path / "var", Secret(TEST_KEY), tmp_path / "k")
    hub = Hub.open(settings)
    rows = [kelahiran_row(i) for i in range(1, 41)]
    rows[3] = kelahiran_row(4, **{"Tgl Lahir": "31/02/2025"})  # invalid: its issue is stored
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    try:
        report = run_batch(hub, source_for(path), "kelahiran")
    finally:
        hub.close()
    assert report.counts.valid == 39
    assert report.counts.invalid == 1

    result = _child_sqlite_store(str(db))

    assert result["rows"] == 40
    assert result["records"] == 39
    assert result["row_issues"] == len([i for i in report.issues if i.row is not None])
    assert result["seconds_inside"] > 0
    assert not list(tmp_path.glob("*store-floor*"))  # its own file is removed


def test_a_store_without_a_batch_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    sqlite3.connect(db).executescript("CREATE TABLE batches (id INTEGER PRIMARY KEY, rows INT);")
    with pytest.raises(SystemExit, match="no batch"):
        _child_sqlite_store(str(db))


def test_the_calamine_peer_counts_the_rows_below_the_header(tmp_path: Path) -> None:
    title = (["LAPORAN KELAHIRAN"], ["KELURAHAN : SUKARASA"])  # the header is on row 3
    rows = [kelahiran_row(i) for i in range(1, 6)]
    path = write_table(tmp_path / "lahir.xlsx", KELAHIRAN_HEADER, rows, title=title)

    result = _child_calamine(str(path), header_row=3)

    assert result["rows"] == 5
    assert result["tool"].startswith("python-calamine ")


def test_the_bare_store_peer_writes_the_records_without_payload(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    settings = Settings(f"sqlite:///{db}", tmp_path / "var", Secret(TEST_KEY), tmp_path / "k")
    hub = Hub.open(settings)
    rows = [kelahiran_row(i) for i in range(1, 201)]
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    try:
        run_batch(hub, source_for(path), "kelahiran")
    finally:
        hub.close()

    full, bare = _child_sqlite_store(str(db)), _child_sqlite_store(str(db), bare=True)

    assert full["records"] == bare["records"] == 200
    assert full["file_bytes"] - bare["file_bytes"] >= 200 * 500  # ~1 KB a record is gone


def test_the_csv_peer_counts_the_rows_below_the_header(tmp_path: Path) -> None:
    rows = [kelahiran_row(i) for i in range(1, 8)]
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)  # header on line 3

    result = _child_csv_read(str(path), header_row=3)

    assert result["rows"] == 7
