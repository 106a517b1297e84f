"""Retention: hot store -> encrypted cold archive (verified before purging) -> deleted; restore."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.audit import verify_chain
from hub.context import Hub
from hub.errors import ConfigError
from hub.pipeline import run_batch, source_for
from hub.retention import (
    RetentionError,
    RetentionPolicy,
    archive_dir,
    read_archive,
    restore_archive,
    run_retention,
)
from hub.store.tables import audit_events, record_counts, record_history, records
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_table

NOW = dt.datetime(2031, 8, 1, tzinfo=dt.UTC)


def ingest(hub: Hub, tmp_path: Path, rows, name: str = "in.csv"):
    path = write_table(tmp_path / name, KELAHIRAN_HEADER, rows)
    return run_batch(hub, source_for(path), "kelahiran", actor="operator:test")


def age(hub: Hub, ids, when: str) -> None:
    with hub.engine.begin() as conn:
        conn.execute(records.update().where(records.c.id.in_(ids)).values(updated_at=when))


def ids_of(hub: Hub) -> list[int]:
    with hub.engine.connect() as conn:
        return list(conn.execute(sa.select(records.c.id).order_by(records.c.id)).scalars())


def counted(hub: Hub) -> int:
    with hub.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(record_counts.c.count), 0))
            ).scalar_one()
        )


@pytest.fixture
def old_and_new(hub: Hub, tmp_path: Path) -> Hub:
    ingest(hub, tmp_path, [kelahiran_row(i) for i in range(1, 6)])
    ingest(hub, tmp_path, [kelahiran_row(1, **{"Nama Anak": "Aisyah Rahma"})], "fix.csv")
    ids = ids_of(hub)
    age(hub, ids[:3], "2025-01-01T00:00:00.000000Z")  # older than five years on NOW
    age(hub, ids[3:], "2029-01-01T00:00:00.000000Z")
    return hub


def test_dry_run_counts_and_changes_nothing(old_and_new):
    hub = old_and_new
    report = run_retention(hub, dry_run=True, now=NOW)
    assert (report.archived, report.archives, report.expired) == (3, [], [])
    assert len(ids_of(hub)) == 5
    assert not archive_dir(hub).exists()


def test_old_records_move_to_a_verified_encrypted_archive(old_and_new):
    hub = old_and_new
    before = counted(hub)
    report = run_retention(hub, now=NOW)
    assert report.archived == 3
    assert report.archive is not None
    assert ids_of(hub) == [4, 5]
    assert counted(hub) == before - 3  # the statistics read model follows
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(record_history)).scalar() == 0
        event = conn.execute(
            sa.select(audit_events).where(audit_events.c.action == "retention.archived")
        ).one()
        assert verify_chain(conn).ok
    directory = archive_dir(hub)
    sealed = (directory / f"{report.archive}.jsonl.gz.enc").read_bytes()
    assert b"Siti" not in sealed
    assert b"3273014507900001" not in sealed
    manifest = json.loads((directory / f"{report.archive}.manifest.json").read_text())
    assert (manifest["records"], manifest["record_ids"]) == (3, [1, 2, 3])
    assert json.loads(event.details)["sha256"] == manifest["sha256"]
    items = read_archive(hub, report.archive)
    assert [len(item["history"]) for item in items] == [1, 0, 0]  # the corrected record


def test_restore_brings_records_back_for_a_legal_request(old_and_new):
    hub = old_and_new
    report = run_retention(hub, now=NOW)
    assert report.archive is not None
    before = counted(hub)
    with pytest.raises(RetentionError, match="alasan"):
        restore_archive(hub, report.archive, reason=" ")
    restored = restore_archive(hub, report.archive, record_ids=[1], reason="surat PN 12/2031")
    assert restored == [1]
    assert ids_of(hub) == [1, 4, 5]
    assert counted(hub) == before + 1
    from hub.custody import trace_record

    trace = trace_record(hub, 1, reveal=True)
    assert trace is not None
    assert [v["version"] for v in trace["versions"]] == [1, 2]
    assert trace["versions"][1]["normalised"]["nama_bayi"] == "Aisyah Rahma"
    with pytest.raises(RetentionError, match="sudah ada"):
        restore_archive(hub, report.archive, record_ids=[1], reason="again")
    with pytest.raises(RetentionError, match="tidak ada di arsip"):
        restore_archive(hub, report.archive, record_ids=[77], reason="x")
    with hub.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_events.c.action)).scalars().all()
    assert actions.count("retention.restored") == 1


def test_a_damaged_archive_is_refused(old_and_new):
    hub = old_and_new
    report = run_retention(hub, now=NOW)
    path = archive_dir(hub) / f"{report.archive}.jsonl.gz.enc"
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(RetentionError, match="checksum"):
        restore_archive(hub, str(report.archive), reason="x")
    for name in ("../etc/passwd", ".hidden", "nope"):
        with pytest.raises(RetentionError):
            restore_archive(hub, name, reason="x")


def test_archives_past_the_cold_period_are_deleted(old_and_new):
    hub = old_and_new
    report = run_retention(hub, now=NOW)
    later = NOW.replace(year=NOW.year + 21)
    dry = run_retention(hub, dry_run=True, now=later, policy=RetentionPolicy(5, 20))
    assert dry.expired == [report.archive]
    assert (archive_dir(hub) / f"{report.archive}.manifest.json").exists()
    done = run_retention(hub, now=later, policy=RetentionPolicy(5, 20))
    assert done.expired == [report.archive]
    left = sorted(p.name for p in archive_dir(hub).iterdir())
    assert not [name for name in left if name.startswith(str(report.archive))]
    assert done.archives
    assert all(name.startswith(done.archives[0]) for name in left)
    assert run_retention(hub, now=later).expired == []


def test_records_with_messages_in_flight_stay(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, [kelahiran_row(1)])
    age(routed_hub, ids_of(routed_hub), "2020-01-01T00:00:00.000000Z")
    report = run_retention(routed_hub, now=NOW)  # its verification is still queued
    assert report.archived == 0
    assert ids_of(routed_hub) == [1]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, RetentionPolicy(5, 20)),
        (
            {"HUB_RETENTION_HOT_YEARS": "3", "HUB_RETENTION_COLD_YEARS": "30"},
            RetentionPolicy(3, 30),
        ),
        ({"HUB_RETENTION_HOT_YEARS": " "}, RetentionPolicy(5, 20)),
    ],
)
def test_policy_from_the_environment(environ, expected):
    assert RetentionPolicy.from_env(environ) == expected


@pytest.mark.parametrize("value", ["0", "-1", "five", "2.5", "999"])
def test_bad_policy_values_are_config_errors(value):
    with pytest.raises(ConfigError, match="HUB_RETENTION_HOT_YEARS"):
        RetentionPolicy.from_env({"HUB_RETENTION_HOT_YEARS": value})


def test_hub_retention_commands(old_and_new, settings, monkeypatch):
    from click.testing import CliRunner

    from hub.cli import main as cli

    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUB_DATA_KEY", str(settings.data_key))
    monkeypatch.setenv("HUB_RETENTION_HOT_YEARS", "1")
    monkeypatch.delenv("HUB_ROUTES", raising=False)
    runner = CliRunner()
    dry = runner.invoke(cli, ["retention", "run", "--dry-run"])
    assert dry.exit_code == 0
    assert "would archive 3 record(s)" in dry.output
    done = runner.invoke(cli, ["retention", "run", "--format", "json"])
    assert json.loads(done.output)["archived"] == 3
    listed = runner.invoke(cli, ["retention", "list", "--format", "json"])
    [archive] = json.loads(listed.output)
    back = runner.invoke(cli, ["retention", "restore", archive["name"], "--reason", "PN 1/2031"])
    assert back.exit_code == 0
    assert "restored 3 record(s)" in back.output
    missing = runner.invoke(cli, ["retention", "restore", "nope", "--reason", "x"])
    assert missing.exit_code == 2
    assert "tidak ditemukan" in missing.output
    bad = runner.invoke(cli, ["retention", "run"], env={"HUB_RETENTION_HOT_YEARS": "x"})
    assert bad.exit_code == 2
    assert "HUB_RETENTION_HOT_YEARS" in bad.output


def test_the_scheduled_retention_job_archives_what_is_due(hub, tmp_path):
    from hub.jobs.builtin import retention
    from hub.jobs.registry import BUILTIN_JOBS

    assert BUILTIN_JOBS["retention"].target == "hub.jobs.builtin:retention"
    ingest(hub, tmp_path, [kelahiran_row(i) for i in range(1, 3)])
    ids = ids_of(hub)
    age(hub, ids[:1], "2015-01-01T00:00:00.000000Z")  # ten years ago: past the hot period
    result = retention(hub)
    assert (result.rows, result.detail["archived"], result.failed) == (1, 1, False)
    assert ids_of(hub) == ids[1:]
