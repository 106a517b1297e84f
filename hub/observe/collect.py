"""Figures read from the database when Prometheus scrapes: they are the same for every
process, so they are asked once per scrape rather than counted in each process.

- `hub_outbox_messages{connector, status}`: messages queued, in flight and dead;
- `hub_outbox_oldest_due_age_seconds{connector}`: how long the oldest message that is due
  has waited (0 when none is due) - the figure to scale workers on;
- `hub_connector_stopped{connector}`, `hub_connector_quota_left{connector}`: from the state
  the dispatchers publish;
- `hub_job_runs{job, outcome}`, `hub_job_last_success_timestamp_seconds{job}`: scheduled
  and manual job runs.

Each query uses an index; a failing database gives `hub_scrape_database_up 0` rather than
a failed scrape.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from hub.observe import metrics
from hub.store.tables import connector_state, job_runs, outbox

log = logging.getLogger("hub.observe")

#: Outbox states worth counting (done and superseded rows only grow).
OPEN_STATES = ("queued", "in_flight", "dead")


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class DatabaseCollector:
    """Reads the outbox, connector state and job runs of one hub's store."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []  # no fixed set: families appear as the store has rows

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "hub_scrape_database_up", "1 when the database answered the scrape's queries."
        )
        try:
            families = self._read()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("metrics: database not readable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        now = dt.datetime.now(dt.UTC)
        stamp = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
        with self.engine.connect() as conn:
            depth = conn.execute(
                sa.select(outbox.c.connector, outbox.c.status, sa.func.count())
                .where(outbox.c.status.in_(OPEN_STATES))
                .group_by(outbox.c.connector, outbox.c.status)
            ).all()
            oldest = conn.execute(
                sa.select(outbox.c.connector, sa.func.min(outbox.c.next_attempt_at))
                .where(outbox.c.status == "queued", outbox.c.next_attempt_at <= stamp)
                .group_by(outbox.c.connector)
            ).all()
            states = conn.execute(
                sa.select(
                    connector_state.c.connector,
                    connector_state.c.state,
                    connector_state.c.quota_left,
                )
            ).all()
            runs = conn.execute(
                sa.select(job_runs.c.job, job_runs.c.outcome, sa.func.count()).group_by(
                    job_runs.c.job, job_runs.c.outcome
                )
            ).all()
            last_ok = conn.execute(
                sa.select(job_runs.c.job, sa.func.max(job_runs.c.finished_at))
                .where(job_runs.c.outcome == "ok")
                .group_by(job_runs.c.job)
            ).all()

        messages = GaugeMetricFamily(
            metrics.OUTBOX_MESSAGES,
            "Outbox messages per connector and status (queued, in_flight, dead).",
            labels=["connector", "status"],
        )
        connectors = {row.connector for row in states} | {row[0] for row in depth}
        counted = {(connector, status): count for connector, status, count in depth}
        for connector in sorted(connectors):
            for status in OPEN_STATES:
                messages.add_metric([connector, status], counted.get((connector, status), 0))
        age = GaugeMetricFamily(
            metrics.OUTBOX_OLDEST_DUE_AGE,
            "Seconds the oldest due outbox message of a connector has waited (0: none due).",
            labels=["connector"],
        )
        waiting = {connector: _seconds(first) for connector, first in oldest}
        for connector in sorted(connectors):
            since = waiting.get(connector)
            age.add_metric([connector], max(0.0, now.timestamp() - since) if since else 0.0)
        stopped = GaugeMetricFamily(
            metrics.CONNECTOR_STOPPED,
            "1 while a connector is stopped until an admin resumes it.",
            labels=["connector"],
        )
        quota = GaugeMetricFamily(
            metrics.CONNECTOR_QUOTA_LEFT,
            "Calls left in a connector's daily quota, as last published by a dispatcher.",
            labels=["connector"],
        )
        for row in states:
            stopped.add_metric([row.connector], 1 if row.state == "stopped" else 0)
            if row.quota_left is not None:
                quota.add_metric([row.connector], row.quota_left)
        job_count = CounterMetricFamily(
            metrics.JOB_RUNS,
            "Runs of scheduled jobs by outcome (ok, failed, running).",
            labels=["job", "outcome"],
        )
        for job, outcome, count in runs:
            job_count.add_metric([job, outcome], count)
        success = GaugeMetricFamily(
            metrics.JOB_LAST_SUCCESS,
            "When each job last finished without error (Unix time).",
            labels=["job"],
        )
        for job, finished in last_ok:
            seconds = _seconds(finished)
            if seconds is not None:
                success.add_metric([job], seconds)
        return [messages, age, stopped, quota, job_count, success]
