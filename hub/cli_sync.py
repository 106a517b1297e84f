"""`hub` commands for scheduled work: sync, jobs, reconcile.

```sh
hub sync coblong_lahir                 # pull one source once (cron users); --format json
hub sync coblong_lahir --deletions     # rows deleted upstream, as reported
hub jobs                               # every job: schedule, last run, outcome, rows, next run
hub jobs run aggregates                # run one job now (takes its lock like the scheduler)
hub jobs history sync:coblong_lahir    # its recent runs
hub jobs scheduler                     # run the scheduler in the foreground (Ctrl+C stops)
hub reconcile                          # delivered vs confirmed by SIAK, per region and type
```
Exit status: 0 done, 1 the job ran and found a problem (a failed run, reconciliation
differences), 2 it could not run (configuration, unreachable source, held elsewhere).
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import click
import orjson

from hub.cli_support import EXIT_INVALID, EXIT_OK, fail, handled

_FORMAT = click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)


def _open() -> Any:
    from hub.context import Hub

    return Hub.open()


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, default=str).decode())


# ------------------------------------------------------------------ sync


@click.command()
@click.argument("name")
@click.option("--deletions", is_flag=True, help="list rows deleted upstream instead of pulling")
@_FORMAT
def sync(name: str, deletions: bool, output: str) -> None:
    """Pull one source of routes.yaml once (what its scheduled job does)."""
    from hub.jobs.runner import JobRunner
    from hub.jobs.scheduler import SYNC_PREFIX, JobSpec
    from hub.sync import deletions as list_deletions
    from hub.sync import source_config

    with handled():
        hub = _open()
        try:
            config = source_config(hub, name)
            if deletions:
                with hub.engine.connect() as conn:
                    found = list_deletions(conn, name)
                if output == "json":
                    _echo_json([_row(d) for d in found])
                else:
                    for d in found:
                        click.echo(f"{d.detected_at}  {d.locator} #{d.key}  ({d.via})")
                    click.echo(f"{len(found)} baris terhapus di sumber {name}")
                return
            job = f"{SYNC_PREFIX}{name}"
            spec = JobSpec(job, job, config.schedule, True)
            run = JobRunner(hub).run_now(job, spec.function())
        finally:
            hub.close()
    if run is None:
        fail(f"{name} is being pulled by another process right now; try again later")
    detail = run.detail or {}
    if output == "json":
        _echo_json({**detail, "run_id": run.id, "outcome": run.outcome})
    else:
        click.echo(
            f"{name}: {detail.get('pages', 0)} halaman, {detail.get('rows', 0)} baris: "
            f"{detail.get('valid', 0)} diterima, {detail.get('invalid', 0)} ditolak, "
            f"{detail.get('duplicates', 0)} duplikat; {detail.get('deleted_upstream', 0)} "
            "terhapus di sumber"
            + (
                f"; dibaca ulang penuh ({detail.get('reread_reason')})"
                if detail.get("reread")
                else ""
            )
        )
        for batch_id in detail.get("batches", []):
            click.echo(f"  batch #{batch_id}")
    sys.exit(EXIT_OK if run.outcome == "ok" else EXIT_INVALID)


def _row(deletion: Any) -> dict[str, Any]:
    return {
        "source": deletion.source,
        "locator": deletion.locator,
        "key": deletion.key,
        "via": deletion.via,
        "detected_at": deletion.detected_at,
    }


# ------------------------------------------------------------------ jobs


@click.group(invoke_without_command=True)
@_FORMAT
@click.pass_context
def jobs(ctx: click.Context, output: str) -> None:
    """Scheduled jobs: schedule, last run, outcome, rows, next run."""
    if ctx.invoked_subcommand is not None:
        return
    from hub.jobs.runner import last_runs
    from hub.jobs.scheduler import job_specs, next_tick, trigger_for

    with handled():
        hub = _open()
        try:
            specs = job_specs(hub.routes)
            with hub.engine.connect() as conn:
                runs = last_runs(conn)
        finally:
            hub.close()
    now = dt.datetime.now(dt.UTC)
    listing = []
    for spec in specs:
        run = runs.get(spec.name)
        upcoming = None
        if spec.scheduled and spec.schedule is not None:
            fire = next_tick(trigger_for(spec.schedule), now)
            upcoming = fire.astimezone(dt.UTC).isoformat(timespec="seconds") if fire else None
        listing.append(
            {
                "job": spec.name,
                "schedule": spec.schedule.describe() if spec.schedule else None,
                "enabled": spec.scheduled,
                "last_run": run.started_at if run else None,
                "outcome": run.outcome if run else None,
                "rows": run.rows if run else None,
                "next_run": upcoming,
                "description": spec.description,
            }
        )
    if output == "json":
        _echo_json(listing)
        return
    click.echo(
        f"{'job':<28} {'schedule':<18} {'last run':<25} {'outcome':<8} {'rows':>7}  next run"
    )
    for item in listing:
        schedule = item["schedule"] if item["enabled"] else "off"
        click.echo(
            f"{item['job']:<28} {schedule or '-':<18} {item['last_run'] or '-':<25} "
            f"{item['outcome'] or '-':<8} {item['rows'] if item['rows'] is not None else '-':>7}  "
            f"{item['next_run'] or '-'}"
        )


@jobs.command("run")
@click.argument("name")
@_FORMAT
def jobs_run(name: str, output: str) -> None:
    """Run one job now (its lock is taken as the scheduler does)."""
    from hub.jobs.runner import JobRunner
    from hub.jobs.scheduler import job_specs

    with handled():
        hub = _open()
        try:
            specs = {s.name: s for s in job_specs(hub.routes)}
            if name not in specs:
                fail(f"no job named {name!r} (known: {', '.join(specs)})")
            run = JobRunner(hub).run_now(name, specs[name].function())
        finally:
            hub.close()
    if run is None:
        fail(f"{name} is running in another process right now")
    if output == "json":
        _echo_json(run.as_dict())
    else:
        click.echo(f"{name}: {run.outcome}, {run.rows} rows")
        click.echo(orjson.dumps(run.detail, option=orjson.OPT_INDENT_2, default=str).decode())
    sys.exit(EXIT_OK if run.outcome == "ok" else EXIT_INVALID)


@jobs.command("history")
@click.argument("name")
@click.option("--limit", default=20, show_default=True)
@_FORMAT
def jobs_history(name: str, limit: int, output: str) -> None:
    """Recent runs of one job."""
    from hub.jobs.runner import recent_runs

    with handled():
        hub = _open()
        try:
            with hub.engine.connect() as conn:
                runs = recent_runs(conn, name, limit)
        finally:
            hub.close()
    if output == "json":
        _echo_json([r.as_dict() for r in runs])
        return
    for r in runs:
        click.echo(
            f"#{r.id} {r.started_at} -> {r.finished_at or '-'} {r.outcome:<8} rows={r.rows} "
            f"tick={r.tick or 'manual'} {r.process}"
        )


@jobs.command("scheduler")
def jobs_scheduler() -> None:
    """Run every scheduled job until stopped (SIGINT/SIGTERM); several processes may run
    this against one PostgreSQL: each tick runs once."""
    from hub.jobs.scheduler import HubScheduler

    stop = threading.Event()
    with handled():
        hub = _open()
        scheduler = HubScheduler(hub)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        scheduler.start()
        click.echo(f"scheduler running: {', '.join(scheduler.triggers) or 'no jobs'}", err=True)
        try:
            stop.wait()
        finally:
            scheduler.shutdown()
            hub.close()


# ------------------------------------------------------------------ reconcile


@click.command()
@_FORMAT
def reconcile(output: str) -> None:
    """Compare what the hub delivered per region and type with what SIAK confirms."""
    from hub.reconcile import reconcile as run_reconcile

    with handled():
        hub = _open()
        try:
            reports = run_reconcile(hub)
        finally:
            hub.close()
    differences = sum(len(r.differences) for r in reports)
    if output == "json":
        _echo_json([r.as_dict() for r in reports])
    else:
        for r in reports:
            click.echo(
                f"{r.connector}: {r.delivered} dikirim, {r.confirmed} dikonfirmasi, "
                f"{len(r.differences)} selisih di {r.cells} sel"
            )
            for d in r.differences:
                click.echo(
                    f"  {d.record_type:<10} {d.kode_wilayah:<14} dikirim {d.delivered:>6}  "
                    f"dikonfirmasi {d.confirmed:>6}  selisih {d.missing_in_siak:+d}"
                )
    sys.exit(EXIT_INVALID if differences else EXIT_OK)


COMMANDS: Sequence[click.Command] = (sync, jobs, reconcile)
