"""One run of a job: its lock, its schedule tick claimed once, and its `job_runs` row.

Several hub processes fire the same schedule. A run goes ahead only when this process
1. takes the job's lock (`hub.jobs.locks`): never two runs of a job at once, and
2. claims the tick in `job_state` (`last_tick` moves forward only once per tick): a process
   that fires the same tick a moment later, after the first run ended, skips it.

A run by hand (`hub jobs run NAME`, `hub sync NAME`) has no tick and only takes the lock.
Each run is a `job_runs` row: `running`, then `ok` or `failed` with its rows and a summary.
A `running` row left by a dead process is closed as failed by the next run that holds the lock.

```python
runner = JobRunner(hub)
run = runner.run("aggregates", aggregates)        # None: locked elsewhere or tick taken
```
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.batch import utc_now
from hub.context import Hub
from hub.errors import HubError
from hub.jobs.locks import job_lock
from hub.jobs.registry import JobResult
from hub.store.tables import job_runs, job_state

log = logging.getLogger("hub.jobs")

STALE: Final = "the process running it stopped"


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class JobRun:
    """One row of `job_runs`."""

    id: int
    job: str
    tick: str | None
    process: str
    started_at: str
    finished_at: str | None
    outcome: str
    rows: int | None
    detail: Any

    @classmethod
    def from_row(cls, row: Any) -> JobRun:
        detail = orjson.loads(row.detail) if row.detail else None
        return cls(
            row.id,
            row.job,
            row.tick,
            row.process,
            row.started_at,
            row.finished_at,
            row.outcome,
            row.rows,
            detail,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "tick": self.tick,
            "process": self.process,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "rows": self.rows,
            "detail": self.detail,
        }


class JobRunner:
    """Runs jobs for one process; safe to share between the scheduler's threads."""

    def __init__(self, hub: Hub, *, process: str | None = None) -> None:
        self.hub = hub
        self.process = process or f"{socket.gethostname()}:{os.getpid()}"

    def run(
        self, name: str, func: Callable[[Hub], JobResult], *, tick: dt.datetime | None = None
    ) -> JobRun | None:
        """Run `func` as job `name`; None when another process holds it or took the tick.

        The job's own errors are recorded as a failed run and not raised (the scheduler goes
        on); `run_now` raises them."""
        return self._run(name, func, tick, raise_errors=False)

    def run_now(self, name: str, func: Callable[[Hub], JobResult]) -> JobRun | None:
        """Run by hand: no tick; a `HubError` of the job is recorded, then raised."""
        return self._run(name, func, None, raise_errors=True)

    def _run(
        self,
        name: str,
        func: Callable[[Hub], JobResult],
        tick: dt.datetime | None,
        *,
        raise_errors: bool,
    ) -> JobRun | None:
        engine = self.hub.engine
        with job_lock(engine, name) as held:
            if not held:
                log.info("job %s: running in another process, skipped", name)
                return None
            tick_text = stamp(tick) if tick is not None else None
            with engine.begin() as conn:
                if tick_text is not None and not claim_tick(conn, name, tick_text):
                    log.info("job %s: tick %s already run, skipped", name, tick_text)
                    return None
                _close_stale(conn, name)
                run_id = conn.execute(
                    job_runs.insert()
                    .values(
                        job=name,
                        tick=tick_text,
                        process=self.process[:120],
                        started_at=utc_now(),
                        outcome="running",
                    )
                    .returning(job_runs.c.id)
                ).scalar_one()
            error: BaseException | None = None
            try:
                result = func(self.hub)
                outcome = "failed" if result.failed else "ok"
                values = {"rows": result.rows, "detail": _json(result.detail)}
            except Exception as exc:  # recorded; a bug in one job must not stop the others
                log.exception("job %s failed", name)
                error = exc
                outcome = "failed"
                message = str(exc) if isinstance(exc, HubError) else type(exc).__name__
                values = {"detail": _json({"error": type(exc).__name__, "message": message[:500]})}
            with engine.begin() as conn:
                conn.execute(
                    job_runs.update()
                    .where(job_runs.c.id == run_id)
                    .values(outcome=outcome, finished_at=utc_now(), **values)
                )
                row = conn.execute(sa.select(job_runs).where(job_runs.c.id == run_id)).one()
            if error is not None and raise_errors:
                raise error
            return JobRun.from_row(row)


def claim_tick(conn: sa.Connection, name: str, tick: str) -> bool:
    """Move the job's `last_tick` forward to `tick`; False when it already is there."""
    insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(job_state)
    conn.execute(
        insert.values(job=name, last_tick=None, updated_at=utc_now()).on_conflict_do_nothing(
            index_elements=["job"]
        )
    )
    claimed = conn.execute(
        job_state.update()
        .where(
            job_state.c.job == name,
            sa.or_(job_state.c.last_tick.is_(None), job_state.c.last_tick < tick),
        )
        .values(last_tick=tick, updated_at=utc_now())
    )
    return claimed.rowcount == 1


def last_tick(conn: sa.Connection, name: str) -> dt.datetime | None:
    value = conn.execute(
        sa.select(job_state.c.last_tick).where(job_state.c.job == name)
    ).scalar_one_or_none()
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def last_runs(conn: sa.Connection) -> dict[str, JobRun]:
    """The latest run of every job that ever ran."""
    latest = (
        sa.select(job_runs.c.job, sa.func.max(job_runs.c.id).label("id"))
        .group_by(job_runs.c.job)
        .subquery()
    )
    rows = conn.execute(sa.select(job_runs).join(latest, latest.c.id == job_runs.c.id))
    return {row.job: JobRun.from_row(row) for row in rows}


def recent_runs(conn: sa.Connection, name: str, limit: int = 20) -> list[JobRun]:
    rows = conn.execute(
        sa.select(job_runs)
        .where(job_runs.c.job == name)
        .order_by(job_runs.c.id.desc())
        .limit(limit)
    )
    return [JobRun.from_row(row) for row in rows]


def _close_stale(conn: sa.Connection, name: str) -> None:
    """`running` rows of this job: we hold its lock, so their process is gone."""
    conn.execute(
        job_runs.update()
        .where(job_runs.c.job == name, job_runs.c.outcome == "running")
        .values(outcome="failed", finished_at=utc_now(), detail=_json({"error": STALE}))
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
