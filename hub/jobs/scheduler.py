"""APScheduler 3.x firing every job of `routes.yaml`: sources and built-in jobs.

Each process runs its own `BackgroundScheduler` with the in-memory job store; the database
decides who runs (`hub.jobs.runner`: a lock per job, each tick claimed once), so N processes
fire every tick and exactly one of them runs it. APScheduler's SQLAlchemy job store is not
used: in 3.x it does not stop two schedulers from running the same job.

Misfires: a tick that comes late while the process is up runs once (`coalesce`, grace
`MISFIRE_GRACE`). Ticks missed while no hub process was up are caught up once at start: if a
tick fell between the last claimed tick and now, the job runs at once, a single time.

Interval schedules are anchored at 2000-01-01 UTC so that every process computes the same
ticks; cron schedules are the same everywhere by nature.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from hub.context import Hub
from hub.errors import ConfigError
from hub.jobs.registry import BUILTIN_JOBS, JobResult
from hub.jobs.runner import JobRun, JobRunner, last_tick
from hub.routes import RoutesConfig, Schedule

log = logging.getLogger("hub.jobs")

ANCHOR: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MISFIRE_GRACE: Final = 300  # seconds a late tick still runs
SYNC_PREFIX: Final = "sync:"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job as configured: its name, what it runs, when, and whether it is scheduled."""

    name: str
    target: str  # "module:function", or "sync:<source>"
    schedule: Schedule | None
    enabled: bool
    description: str = ""

    @property
    def scheduled(self) -> bool:
        return self.enabled and self.schedule is not None

    def function(self) -> Callable[[Hub], JobResult]:
        """What the job runs, imported now (dotted path)."""
        if self.target.startswith(SYNC_PREFIX):
            return functools.partial(sync_job, source=self.target.removeprefix(SYNC_PREFIX))
        module_name, _, attribute = self.target.partition(":")
        try:
            func = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"job {self.name}: cannot load {self.target}") from exc
        if not callable(func):
            raise ConfigError(f"job {self.name}: {self.target} is not callable")
        loaded: Callable[[Hub], JobResult] = func
        return loaded


def sync_job(hub: Hub, *, source: str) -> JobResult:
    """The job of one `sources:` entry: `hub.sync.run_source`."""
    from hub.sync import run_source, source_config

    report = run_source(hub, source_config(hub, source), actor=f"job:{SYNC_PREFIX}{source}")
    return JobResult(rows=report.counts.rows, detail=report.as_dict())


def job_specs(routes: RoutesConfig | None) -> list[JobSpec]:
    """Every job: one per source (`sync:NAME`), then the built-in ones."""
    specs: list[JobSpec] = []
    if routes is not None:
        for name, source in routes.sources.items():
            specs.append(
                JobSpec(
                    f"{SYNC_PREFIX}{name}",
                    f"{SYNC_PREFIX}{name}",
                    source.schedule,
                    source.schedule is not None,
                    f"pull {source.record_type} from {source.locator} ({source.strategy})",
                )
            )
    configured = routes.jobs if routes is not None else {}
    for name, builtin in BUILTIN_JOBS.items():
        settings = configured.get(name)
        schedule = builtin.schedule
        enabled = builtin.enabled
        if settings is not None:
            schedule = settings.schedule or schedule
            enabled = settings.enabled if ("enabled" in _given(settings)) else True
        specs.append(JobSpec(name, builtin.target, schedule, enabled, builtin.description))
    return specs


def _given(settings: Any) -> set[str]:
    """`enabled` counts as given when it is false, or when a schedule was given (a job
    named in routes.yaml with a schedule is wanted)."""
    return {"enabled"} if (not settings.enabled or settings.schedule is not None) else set()


def trigger_for(schedule: Schedule) -> BaseTrigger:
    zone = ZoneInfo(schedule.timezone)
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone=zone)
    assert schedule.interval is not None
    return IntervalTrigger(seconds=schedule.interval, start_date=ANCHOR, timezone=zone)


def next_tick(trigger: BaseTrigger, after: dt.datetime) -> dt.datetime | None:
    """The first tick strictly after `after`."""
    moment = after + dt.timedelta(microseconds=1)
    fire: dt.datetime | None = trigger.get_next_fire_time(None, moment)
    return fire


def latest_tick(trigger: BaseTrigger, now: dt.datetime) -> dt.datetime | None:
    """The last tick at or before `now` (looking back up to 400 days)."""
    span = dt.timedelta(seconds=60)
    while span <= dt.timedelta(days=400):
        fire: dt.datetime | None = trigger.get_next_fire_time(None, now - span)
        if fire is not None and fire <= now:
            for _ in range(100_000):
                following = next_tick(trigger, fire)
                if following is None or following > now:
                    return fire
                fire = following
            return fire
        span *= 2
    return None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class HubScheduler:
    """Fires the scheduled jobs of one process.

    ```python
    scheduler = HubScheduler(hub)
    scheduler.start()        # background threads; catches up missed ticks once
    ...
    scheduler.shutdown()
    ```
    """

    def __init__(
        self,
        hub: Hub,
        *,
        specs: list[JobSpec] | None = None,
        runner: JobRunner | None = None,
        now: Callable[[], dt.datetime] = utc_now,
        threads: int = 4,
    ) -> None:
        self.hub = hub
        self.specs = {s.name: s for s in (specs if specs is not None else job_specs(hub.routes))}
        self.runner = runner or JobRunner(hub)
        self.now = now
        self.triggers = {
            name: trigger_for(spec.schedule)
            for name, spec in self.specs.items()
            if spec.scheduled and spec.schedule is not None
        }
        self.scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(threads)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE,
            },
        )

    def missed(self) -> list[str]:
        """Scheduled jobs with a tick between their last claimed tick and now."""
        now = self.now()
        late = []
        with self.hub.engine.connect() as conn:
            for name, trigger in self.triggers.items():
                claimed = last_tick(conn, name)
                if claimed is None:
                    continue
                due = next_tick(trigger, claimed)
                if due is not None and due < now - dt.timedelta(seconds=1):
                    late.append(name)
        return late

    def start(self) -> None:
        late = set(self.missed())
        for name, trigger in self.triggers.items():
            extra: dict[str, Any] = {}
            if name in late:
                extra["next_run_time"] = self.now()  # caught up once, now
                log.info("job %s: a tick was missed while the hub was down; running it once", name)
            self.scheduler.add_job(self.fire, trigger, args=[name], id=name, name=name, **extra)
        self.scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def fire(self, name: str) -> JobRun | None:
        """One tick of job `name` (APScheduler calls this): run it unless another process
        has it or already ran this tick."""
        spec = self.specs[name]
        trigger = self.triggers[name]
        now = self.now()
        tick = latest_tick(trigger, now) or now
        try:
            func = spec.function()
        except ConfigError:
            log.exception("job %s cannot be loaded", name)
            return None
        return self.runner.run(name, func, tick=tick)

    def next_run(self, name: str) -> dt.datetime | None:
        trigger = self.triggers.get(name)
        return next_tick(trigger, self.now()) if trigger is not None else None
