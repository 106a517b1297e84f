"""Accepted uploads whose process stopped before they ended are run again, once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

import hub.api.batches as batches_module
from hub.api.batches import Upload, accept, process, sniff, stage
from hub.api.principal import Principal
from hub.api.resume import claimed, resume_uploads, unfinished
from hub.api.serve import app_from_env
from hub.context import Hub
from hub.store.tables import audit_events, batch_files, batches, records
from tests.api.test_batches import KELURAHAN, report_file
from tests.builders import kelahiran_row

OPERATOR = Principal.for_role("user:ani", "operator", KELURAHAN)


def accepted(hub: Hub, path: Path) -> int:
    """What `POST /batches` stores before it answers 202, with nothing run after it: the
    process stopped right after the answer."""
    with path.open("rb") as handle:
        staged = stage(handle, path.name)
    try:
        upload = Upload(OPERATOR, "kelahiran", 1, KELURAHAN, staged, sniff(staged.path))
        return accept(hub, upload)
    finally:
        staged.discard()


def batch(hub: Hub, batch_id: int) -> sa.Row[tuple[str, int, int, int, str | None]]:
    with hub.engine.connect() as conn:
        return conn.execute(
            sa.select(
                batches.c.status,
                batches.c.rows,
                batches.c.valid,
                batches.c.invalid,
                batches.c.error,
            ).where(batches.c.id == batch_id)
        ).one()


def record_count(hub: Hub) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one())


@pytest.fixture
def report(tmp_path: Path) -> Path:
    rows = [kelahiran_row(1), kelahiran_row(2), kelahiran_row(3, **{"NIK Ibu": "12345"})]
    return report_file(tmp_path, rows=rows)


def test_an_upload_left_queued_is_run_from_its_sealed_file(hub: Hub, report: Path) -> None:
    batch_id = accepted(hub, report)
    assert batch(hub, batch_id).status == "queued"
    assert unfinished(hub, older_than=3600) == []  # too fresh: its own process runs it
    assert resume_uploads(hub, older_than=0) == [batch_id]
    assert tuple(batch(hub, batch_id)) == ("done", 3, 2, 1, None)
    assert record_count(hub) == 2
    assert resume_uploads(hub, older_than=0) == []  # done: never run twice
    assert record_count(hub) == 2
    with hub.engine.connect() as conn:
        actor = conn.execute(
            sa.select(audit_events.c.actor).where(audit_events.c.action == "batch.ingested")
        ).scalar_one()
    assert actor == "user:ani"  # still the operator's batch


def test_an_upload_left_processing_is_run_again(hub: Hub, report: Path) -> None:
    batch_id = accepted(hub, report)
    with hub.engine.begin() as conn:  # the pipeline had started; its transaction rolled back
        conn.execute(batches.update().where(batches.c.id == batch_id).values(status="processing"))
    assert resume_uploads(hub, older_than=0) == [batch_id]
    assert batch(hub, batch_id).status == "done"
    assert record_count(hub) == 2


def test_a_claimed_upload_is_left_to_its_claimant(hub: Hub, report: Path) -> None:
    batch_id = accepted(hub, report)
    with claimed(hub, batch_id) as mine:
        assert mine
        assert resume_uploads(hub, older_than=0) == []
        with claimed(hub, batch_id) as again:
            assert not again
    assert batch(hub, batch_id).status == "queued"
    assert resume_uploads(hub, older_than=0) == [batch_id]


@pytest.mark.service
def test_on_postgresql_another_process_s_claim_is_respected(hub: Hub, report: Path) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    batch_id = accepted(hub, report)
    # another process's session, as far as PostgreSQL knows; closed when the block ends
    other = sa.create_engine(hub.engine.url, poolclass=sa.pool.NullPool)
    try:
        with other.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_advisory_lock(hashtextextended(current_schema() || :key, 0))"),
                {"key": f":upload-batch:{batch_id}"},
            )
            assert resume_uploads(hub, older_than=0) == []
            assert batch(hub, batch_id).status == "queued"
        # the holder's connection is gone (as when its process dies): the lock went with it
        assert resume_uploads(hub, older_than=0) == [batch_id]
    finally:
        other.dispose()
    assert batch(hub, batch_id).status == "done"


def test_the_upload_s_own_run_steps_aside_for_a_claimant(hub: Hub, report: Path) -> None:
    with report.open("rb") as handle:
        staged = stage(handle, report.name)
    upload = Upload(OPERATOR, "kelahiran", 1, KELURAHAN, staged, "csv")
    batch_id = accept(hub, upload)
    with claimed(hub, batch_id):
        process(hub, batch_id, upload)
    assert batch(hub, batch_id).status == "queued"
    assert not staged.directory.exists()


def test_a_sealed_file_that_cannot_be_opened_fails_its_batch(hub: Hub, report: Path) -> None:
    batch_id = accepted(hub, report)
    with hub.engine.begin() as conn:
        sealed = conn.execute(sa.select(batch_files.c.content)).scalar_one()
        damaged = sealed[:-1] + bytes([sealed[-1] ^ 1])
        conn.execute(batch_files.update().values(content=damaged))
    assert resume_uploads(hub, older_than=0) == []
    status = batch(hub, batch_id)
    assert status.status == "failed"
    assert "unggah ulang" in (status.error or "")
    assert resume_uploads(hub, older_than=0) == []


def test_hub_serve_resumes_at_start_up(
    settings: object, report: Path, monkeypatch: pytest.MonkeyPatch, hub: Hub
) -> None:
    batch_id = accepted(hub, report)
    with hub.engine.begin() as conn:  # accepted a minute ago, by a process that is gone
        conn.execute(
            batches.update()
            .where(batches.c.id == batch_id)
            .values(created_at="2020-01-01T00:00:00.000Z")
        )
    monkeypatch.setenv("HUB_DATABASE_URL", hub.settings.database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(hub.settings.data_dir))
    monkeypatch.setenv("HUB_DATA_KEY", str(hub.settings.data_key or ""))
    monkeypatch.setenv("HUB_ROUTES", "")
    monkeypatch.chdir(os.path.dirname(report))  # no routes.yaml here
    with TestClient(app_from_env()):
        pass  # start-up resumes; shutting down waits for it
    assert batch(hub, batch_id).status == "done"


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlocked_upload_runs_again_and_a_real_error_does_not(
    hub: Hub, report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = batches_module.run_batch
    calls: list[int] = []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("INSERT ...", {}, _Deadlock("deadlock detected"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batches_module, "run_batch", flaky)
    batch_id = accepted(hub, report)
    assert resume_uploads(hub, older_than=0) == [batch_id]
    assert len(calls) == 2
    assert batch(hub, batch_id).status == "done"

    def broken(*args: object, **kwargs: object) -> object:
        raise sa.exc.ProgrammingError("SELECT ...", {}, Exception("syntax error"))

    monkeypatch.setattr(batches_module, "run_batch", broken)
    other = accepted(hub, report)
    assert resume_uploads(hub, older_than=0) == [other]
    assert batch(hub, other).status == "failed"
