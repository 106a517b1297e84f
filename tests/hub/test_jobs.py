"""hub.jobs: runs recorded, each tick once, one process at a time, misfires caught up once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.errors import SourceError
from hub.jobs.builtin import aggregates, expected_counts
from hub.jobs.locks import job_lock
from hub.jobs.registry import BUILTIN_JOBS, JobResult
from hub.jobs.runner import JobRunner, claim_tick, last_runs, recent_runs
from hub.jobs.scheduler import HubScheduler, JobSpec, job_specs, latest_tick, trigger_for
from hub.routes import JobSettings, RoutesConfig, Schedule, SourceConfig
from hub.store.tables import job_runs, job_state, record_counts
from tests.conftest import REPO, TEST_KEY

TICK = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)


def counted(hub: Hub) -> JobResult:
    return JobResult(rows=3, detail={"seen": True})


def broken(hub: Hub) -> JobResult:
    raise SourceError("Sumber coblong tidak dapat dihubungi: 08001")


def probe(hub: Hub) -> JobResult:
    """The job the two-process test schedules: takes a moment, leaves a trace."""
    time.sleep(0.3)
    return JobResult(rows=1, detail={"pid": os.getpid()})


def test_a_run_is_recorded_with_its_outcome_and_rows(hub: Hub):
    runner = JobRunner(hub, process="host:1")
    run = runner.run("counted", counted, tick=TICK)
    assert run is not None
    assert (run.outcome, run.rows, run.detail, run.tick) == (
        "ok",
        3,
        {"seen": True},
        "2026-11-30T02:00:00Z",
    )
    failed = runner.run("broken", broken)
    assert failed is not None
    assert failed.outcome == "failed"
    assert failed.detail == {
        "error": "SourceError",
        "message": "Sumber coblong tidak dapat dihubungi: 08001",
    }
    with pytest.raises(SourceError):
        runner.run_now("broken", broken)  # by hand: recorded, then raised
    with hub.engine.connect() as conn:
        assert [r.outcome for r in recent_runs(conn, "broken")] == ["failed", "failed"]
        assert set(last_runs(conn)) == {"counted", "broken"}


def test_a_tick_runs_once_however_many_processes_fire_it(hub: Hub):
    first, second = JobRunner(hub, process="a:1"), JobRunner(hub, process="b:2")
    assert first.run("counted", counted, tick=TICK) is not None
    assert second.run("counted", counted, tick=TICK) is None  # same tick, a moment later
    assert second.run("counted", counted, tick=TICK + dt.timedelta(minutes=15)) is not None
    assert first.run("counted", counted, tick=TICK) is None  # an old tick never runs again
    with hub.engine.begin() as conn:
        assert not claim_tick(conn, "counted", "2026-11-30T02:15:00Z")


def test_a_job_held_by_another_process_is_skipped(hub: Hub):
    with job_lock(hub.engine, "counted") as held:
        assert held
        with job_lock(hub.engine, "counted") as again:
            assert not again
        assert JobRunner(hub).run("counted", counted, tick=TICK) is None
        with job_lock(hub.engine, "other") as other:
            assert other  # locks are per job
    assert JobRunner(hub).run("counted", counted, tick=TICK) is not None


def test_a_run_left_running_by_a_dead_process_is_closed(hub: Hub):
    with hub.engine.begin() as conn:
        conn.execute(
            job_runs.insert().values(
                job="counted",
                process="gone:9",
                started_at="2026-11-29T00:00:00Z",
                outcome="running",
            )
        )
    JobRunner(hub).run("counted", counted)
    with hub.engine.connect() as conn:
        runs = recent_runs(conn, "counted")
    assert [r.outcome for r in runs] == ["ok", "failed"]
    assert runs[1].detail == {"error": "the process running it stopped"}


def test_jobs_come_from_sources_and_built_ins():
    routes = RoutesConfig(
        {},
        (),
        sources={
            "coblong": SourceConfig(
                "coblong", "sqlserver", "kelahiran", "NO_REG", "full", table="LAHIR",
                schedule=Schedule(cron="*/15 * * * *"),
            ),
            "manual": SourceConfig("manual", "sqlserver", "kematian", "ID", "full", table="MATI"),
        },
        jobs={"reconcile": JobSettings(Schedule(cron="30 1 * * *")), "aggregates": JobSettings(None, enabled=False)},
    )  # fmt: skip
    specs = {s.name: s for s in job_specs(routes)}
    assert set(specs) == {"sync:coblong", "sync:manual", *BUILTIN_JOBS}
    assert specs["sync:coblong"].scheduled
    assert not specs["sync:manual"].scheduled  # no schedule: hub sync manual only
    assert specs["reconcile"].schedule == Schedule(cron="30 1 * * *")
    assert not specs["aggregates"].scheduled
    assert not specs["deliveries"].scheduled  # off unless asked for
    assert specs["reconcile"].function().__name__ == "run_job"


def test_the_latest_tick_is_the_same_in_every_process():
    every_15 = trigger_for(Schedule(interval=900))
    now = dt.datetime(2026, 11, 30, 2, 7, 31, tzinfo=dt.UTC)
    assert latest_tick(every_15, now) == dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
    nightly = trigger_for(Schedule(cron="0 2 * * *", timezone="Asia/Jakarta"))
    assert latest_tick(nightly, now) == dt.datetime(2026, 11, 29, 19, 0, tzinfo=dt.UTC)


def test_ticks_missed_while_the_hub_was_down_run_once(hub: Hub):
    spec = JobSpec("hourly", "tests.hub.test_jobs:counted", Schedule(interval=3600), True)
    with hub.engine.begin() as conn:  # the last run was five hours ago
        old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)).replace(minute=0, second=0)
        conn.execute(
            job_state.insert().values(
                job="hourly", last_tick=old.isoformat().replace("+00:00", "Z"), updated_at="x"
            )
        )
    scheduler = HubScheduler(hub, specs=[spec])
    assert scheduler.missed() == ["hourly"]
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _runs(hub, "hourly") == 0:
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        scheduler.shutdown()
    assert _runs(hub, "hourly") == 1  # five missed ticks, one catch-up run
    assert HubScheduler(hub, specs=[spec]).missed() == []


def _runs(hub: Hub, job: str) -> int:
    with hub.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(job_runs).where(job_runs.c.job == job)
        return int(conn.execute(query).scalar_one())


SCHEDULER_PROCESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from starlette.datastructures import Secret
    from hub.context import Hub
    from hub.jobs.scheduler import HubScheduler, JobSpec
    from hub.routes import Schedule
    from hub.settings import Settings

    url, data_dir, key, seconds = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    hub = Hub.open(Settings(url, data_dir, Secret(key), data_dir / "hub.key"))
    spec = JobSpec("probe", "tests.hub.test_jobs:probe", Schedule(interval=1), True)
    scheduler = HubScheduler(hub, specs=[spec])
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start their schedulers together
    scheduler.start()
    time.sleep(seconds)
    scheduler.shutdown()
    hub.close()
    """
)


def test_a_schedule_runs_once_across_two_processes(hub: Hub, tmp_path: Path):
    """Two real hub processes fire the same one-second schedule for five seconds."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SCHEDULER_PROCESS,
                hub.settings.database_url,
                str(tmp_path / f"p{i}"),
                TEST_KEY,
                "5",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        assert process.wait(timeout=60) == 0
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
    with hub.engine.connect() as conn:
        runs = conn.execute(
            sa.select(job_runs).where(job_runs.c.job == "probe").order_by(job_runs.c.id)
        ).all()
    ticks = [r.tick for r in runs]
    assert 3 <= len(runs) <= 6
    assert len(ticks) == len(set(ticks))  # every tick ran once
    assert all(r.outcome == "ok" for r in runs)
    spans = sorted((r.started_at, r.finished_at) for r in runs)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False))
    assert len({r.process for r in runs}) >= 1


def test_aggregates_repairs_the_statistics_read_model(routed_hub: Hub, tmp_path: Path):
    from hub.pipeline import run_batch, source_for
    from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_csv

    hub = routed_hub
    path = write_csv(
        tmp_path / "lahir.csv", KELAHIRAN_HEADER, [kelahiran_row(i) for i in range(1, 6)]
    )
    run_batch(hub, source_for(path), "kelahiran", file_name=path.name)
    assert aggregates(hub).rows == 0  # consistent: nothing to repair
    with hub.engine.begin() as conn:
        expected = expected_counts(conn)
        emptied = conn.execute(sa.select(sa.func.count()).select_from(record_counts)).scalar_one()
        emptied -= len(expected)  # cells left at 0 by records that moved on
        conn.execute(record_counts.update().values(count=record_counts.c.count + 7))
        conn.execute(
            record_counts.insert().values(
                record_type="kematian",
                status="valid",
                kode_wilayah="32.73.01.1001",
                month="2025-01",
                count=2,
            )
        )
    result = aggregates(hub)
    assert result.detail == {
        "cells": len(expected),
        "corrected": len(expected),
        "removed": emptied + 1,
    }
    with hub.engine.connect() as conn:
        held = {
            (r.record_type, r.status, r.kode_wilayah, r.month): r._mapping["count"]
            for r in conn.execute(sa.select(record_counts))
        }
    assert {cell: n for cell, n in held.items() if n} == expected


def test_hub_settings_objects_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Schedule(cron="* * * * *").cron = "x"  # type: ignore[misc]
