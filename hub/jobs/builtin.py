"""Built-in jobs: deliveries for hubs without a permanent worker, and the aggregates check.

The dispatcher itself needs nothing periodic: a retry is a queued message with a later
`next_attempt_at`, and a message whose worker died is claimed again once its lease runs out;
a running `hub worker` (or `hub serve`) picks both up. The `deliveries` job runs the
dispatcher until nothing is due, for installations that schedule work instead of running a
worker; it is off by default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from hub.context import Hub
from hub.jobs.registry import JobResult
from hub.stats import month_of
from hub.store.tables import record_counts, records


def deliveries(hub: Hub) -> JobResult:
    """Send every due verification and delivery, then stop."""
    from hub.dispatcher import Dispatcher

    routes = hub.routes
    if routes is None or not routes.connectors:
        return JobResult(0, {"skipped": "no connectors in routes.yaml"})
    dispatcher = Dispatcher(hub, routes)
    asyncio.run(dispatcher.run(until_idle=True))
    counts = dispatcher.stats.as_dict()
    return JobResult(sum(counts.values()), counts)


def aggregates(hub: Hub) -> JobResult:
    """Rebuild the statistics read model from the records and repair what differs.

    Runs in one transaction that first locks `record_counts` (PostgreSQL: EXCLUSIVE mode;
    SQLite: the write lock), so status changes committing meanwhile wait and then apply their
    moves to the rebuilt counts."""
    with hub.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE record_counts IN EXCLUSIVE MODE")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        expected = expected_counts(conn)
        held = {
            (r.record_type, r.status, r.kode_wilayah, r.month): int(r._mapping["count"])
            for r in conn.execute(sa.select(record_counts))
        }
        # A cell whose records all moved on stays at 0 (count_moves never deletes it).
        wrong = {cell: n for cell, n in expected.items() if held.get(cell) != n}
        gone = [cell for cell, n in held.items() if cell not in expected and n != 0]
        for cell in gone:
            conn.execute(record_counts.update().where(*_cell_is(cell)).values(count=0))
        for cell, count in wrong.items():
            if cell in held:
                conn.execute(record_counts.update().where(*_cell_is(cell)).values(count=count))
            else:
                conn.execute(record_counts.insert().values(**_cell_values(cell), count=count))
    return JobResult(
        len(wrong) + len(gone),
        {"cells": len(expected), "corrected": len(wrong), "removed": len(gone)},
    )


def expected_counts(conn: sa.Connection) -> dict[tuple[str, str, str, str], int]:
    """What `record_counts` must hold, counted from `records`."""
    month = sa.func.substr(records.c.event_date, 1, 7)
    query = sa.select(
        records.c.record_type, records.c.status, records.c.kode_wilayah, month, sa.func.count()
    ).group_by(records.c.record_type, records.c.status, records.c.kode_wilayah, month)
    counts: dict[tuple[str, str, str, str], int] = {}
    for record_type, status, kode, event_month, n in conn.execute(query):
        cell = (record_type, status, kode, month_of(event_month))
        counts[cell] = counts.get(cell, 0) + int(n)
    return counts


def _cell_values(cell: Iterable[str]) -> dict[str, Any]:
    return dict(zip(("record_type", "status", "kode_wilayah", "month"), cell, strict=True))


def _cell_is(cell: Iterable[str]) -> list[Any]:
    return [record_counts.c[name] == value for name, value in _cell_values(cell).items()]


def retention(hub: Hub) -> JobResult:
    """`hub retention run` on schedule (hub.retention): the records archived, the archives
    written and deleted."""
    from hub.retention import run_retention

    report = run_retention(hub, actor="job:retention")
    return JobResult(report.archived, report.as_dict())
