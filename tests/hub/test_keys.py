"""PII key versions: rotation re-encrypts in batches, resumable, readable throughout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hub.audit import verify_chain
from hub.context import Hub
from hub.crypto import DataProtector, DecryptionError
from hub.keys import key_status, run_rotation, start_rotation, sweep_remaining
from hub.pipeline import run_batch, source_for
from hub.store.tables import audit_events, data_keys, records, row_issues
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_table


def ingest(hub: Hub, tmp_path: Path, rows, name: str = "in.csv"):
    path = write_table(tmp_path / name, KELAHIRAN_HEADER, rows)
    return run_batch(hub, source_for(path), "kelahiran", actor="operator:test")


def versions_in_use(hub: Hub) -> set[int]:
    with hub.engine.connect() as conn:
        blobs = conn.execute(sa.select(records.c.pii)).scalars().all()
    return {bytes(b)[1] for b in blobs}


def all_values(hub: Hub) -> list[dict]:
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(records).order_by(records.c.id)).all()
    return [
        hub.protector.open_json(bytes(r.pii), r.record_type.encode() + bytes(r.natural_key))
        for r in rows
    ]


@pytest.fixture
def stocked(hub: Hub, tmp_path: Path) -> Hub:
    rows = [kelahiran_row(i) for i in range(1, 13)]
    rows.append(kelahiran_row(13, **{"Nama Ibu": "", "NIK Ayah": "12345"}))  # an invalid row
    ingest(hub, tmp_path, rows)
    return hub


def test_a_rotation_reseals_everything_in_resumable_batches(stocked, settings):
    hub = stocked
    before = all_values(hub)
    assert versions_in_use(hub) == {1}
    started = start_rotation(hub, actor="admin:test")
    assert started.to_version == 2
    assert hub.protector.key_id == 2
    # Stopped after two batches of 5 (a crash, Ctrl+C): both versions in use, all readable.
    partial = run_rotation(hub, batch_size=5, max_batches=2)
    assert partial.state == "running"
    assert partial.resealed == 10
    assert versions_in_use(hub) == {1, 2}
    assert all_values(hub) == before
    # Another process opened now reads both versions; a stale one learns version 2 on demand.
    other = Hub.open(settings)
    try:
        assert all_values(other) == before
    finally:
        other.close()
    stale = Hub.open(settings)
    try:
        stale.protector._ciphers.pop(2)  # as if it had started before the rotation
        stale.protector.activate(1)
        assert all_values(stale) == before  # unknown version 2 -> key ring read again
        assert 2 in stale.protector.versions
        # a value it seals with the old version meanwhile is picked up by the final sweep
        with stale.engine.begin() as conn:
            row = conn.execute(sa.select(records).order_by(records.c.id.desc())).first()
            aad = row.record_type.encode() + bytes(row.natural_key)
            old = DataProtector(bytes(range(32)))  # version 1 of the same master key
            resealed = old.encrypt(old.decrypt(bytes(row.pii), aad), aad)
            conn.execute(records.update().where(records.c.id == row.id).values(pii=resealed))
    finally:
        stale.close()
    # Run again: resumes (no new version), reseals the rest, sweeps, retires version 1.
    again = start_rotation(hub)
    assert again.rotation_id == started.rotation_id
    done = run_rotation(hub, batch_size=5)
    assert done.state == "done"
    assert done.remaining == 0
    assert versions_in_use(hub) == {2}
    assert sweep_remaining(hub, 2) == 0
    assert all_values(hub) == before
    with hub.engine.connect() as conn:
        issue_versions = {
            bytes(b)[1]
            for b in conn.execute(
                sa.select(row_issues.c.value_enc).where(row_issues.c.value_enc.is_not(None))
            ).scalars()
        }
        states = dict(conn.execute(sa.select(data_keys.c.version, data_keys.c.state)).all())
        actions = conn.execute(sa.select(audit_events.c.action)).scalars().all()
        assert verify_chain(conn).ok
    assert issue_versions == {2}
    assert states == {1: "retired", 2: "active"}
    assert actions.count("pii_key.rotation_started") == 1
    assert actions.count("pii_key.rotated") == 1
    versions, running = key_status(hub)
    assert running is None
    assert [(v.version, v.state) for v in versions] == [(1, "retired"), (2, "active")]


def test_blind_indexes_keep_working_across_a_rotation(stocked, tmp_path):
    hub = stocked
    start_rotation(hub)
    run_rotation(hub)
    report = ingest(hub, tmp_path, [kelahiran_row(1)], name="again.csv")
    assert (report.counts.duplicates, report.counts.valid) == (1, 0)  # found by its blind index


def test_a_new_ingest_after_rotation_seals_with_the_new_version(stocked, tmp_path):
    hub = stocked
    start_rotation(hub)
    run_rotation(hub)
    ingest(hub, tmp_path, [kelahiran_row(40)], name="new.csv")
    assert versions_in_use(hub) == {2}


def test_another_master_key_cannot_unwrap_the_versions(stocked, settings):
    start_rotation(stocked)
    wrong = dataclasses.replace(
        settings, data_key=type(settings.data_key)("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    )
    with pytest.raises(DecryptionError, match="another master key"):
        Hub.open(wrong)


def test_running_without_a_rotation_is_a_clear_error(hub):
    from hub.errors import ConfigError

    with pytest.raises(ConfigError, match="no key rotation is running"):
        run_rotation(hub)


def test_hub_keys_rotate_pii_and_status(stocked, settings, monkeypatch):
    from hub.cli import main as cli

    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUB_DATA_KEY", str(settings.data_key))
    monkeypatch.delenv("HUB_ROUTES", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["keys", "rotate", "--pii", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "PII key rotation to version 2 done" in result.output
    status = runner.invoke(cli, ["keys", "status"])
    assert "version 2\tactive" in status.output
    assert "version 1\tretired\t0 values" in status.output
    bad = runner.invoke(cli, ["keys", "rotate", "--pii", "--batch-size", "0"])
    assert bad.exit_code == 2
