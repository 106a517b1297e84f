"""Reconciliation: what the hub delivered per region and type against what SIAK confirms.

```python
reports = reconcile(hub)                # one report per SIAK connector of routes.yaml
reports[0].differences                  # [Difference(kematian, 32.73.01.1001, 12, 11)]
```

The hub's side counts records with at least one finished delivery to the connector
(`outbox` kind `deliver`, status `done`), by record type and the record's region
(`records.kode_wilayah`: the schema's `x-wilayah-field`). SIAK's side comes from its counts
endpoint (`SiakDeliverer.confirmed_counts`). A record counts once however many versions
were sent. Every cell where the two differ is a `Difference`; the nightly job (`reconcile`)
fails when there is any, so `hub jobs` shows it, and writes an audit event with the counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from hub.audit import AuditLog
from hub.context import Hub
from hub.errors import ConfigError
from hub.jobs.registry import JobResult
from hub.routes import DELIVERERS
from hub.store.tables import outbox, records

Cell = tuple[str, str]  # (record_type, kode_wilayah)


class CountingDeliverer(Protocol):
    async def confirmed_counts(self) -> dict[Cell, int]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Difference:
    record_type: str
    kode_wilayah: str
    delivered: int
    confirmed: int

    @property
    def missing_in_siak(self) -> int:
        return self.delivered - self.confirmed

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.record_type,
            "kode_wilayah": self.kode_wilayah,
            "delivered": self.delivered,
            "confirmed": self.confirmed,
            "missing_in_siak": self.missing_in_siak,
        }


@dataclass
class ReconcileReport:
    connector: str
    cells: int = 0
    delivered: int = 0
    confirmed: int = 0
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "cells": self.cells,
            "delivered": self.delivered,
            "confirmed": self.confirmed,
            "differences": [d.as_dict() for d in self.differences],
        }


def delivered_counts(conn: sa.Connection, connector: str) -> dict[Cell, int]:
    """Records the hub delivered through `connector`, by record type and region."""
    done = (
        sa.select(outbox.c.record_id)
        .where(
            outbox.c.connector == connector, outbox.c.kind == "deliver", outbox.c.status == "done"
        )
        .distinct()
        .subquery()
    )
    query = (
        sa.select(records.c.record_type, records.c.kode_wilayah, sa.func.count())
        .join(done, done.c.record_id == records.c.id)
        .group_by(records.c.record_type, records.c.kode_wilayah)
    )
    return {(t, k): int(n) for t, k, n in conn.execute(query)}


def compare(
    connector: str, delivered: Mapping[Cell, int], confirmed: Mapping[Cell, int]
) -> ReconcileReport:
    cells = sorted(set(delivered) | set(confirmed))
    report = ReconcileReport(
        connector, len(cells), sum(delivered.values()), sum(confirmed.values())
    )
    for cell in cells:
        ours, theirs = delivered.get(cell, 0), confirmed.get(cell, 0)
        if ours != theirs:
            report.differences.append(Difference(cell[0], cell[1], ours, theirs))
    return report


def reconcile(
    hub: Hub, *, connectors: Mapping[str, CountingDeliverer] | None = None
) -> list[ReconcileReport]:
    """One report per receiving connector of `routes.yaml` (`connectors` replaces the clients
    built from it: tests pass the sandbox in process)."""
    routes = hub.routes
    if routes is None:
        raise ConfigError("no routes.yaml: nothing was delivered anywhere to reconcile")
    names = [n for n, c in routes.connectors.items() if c.adapter in DELIVERERS]
    reports = []
    for name in names:
        with hub.engine.connect() as conn:
            delivered = delivered_counts(conn, name)
        confirmed = asyncio.run(_confirmed(routes.connectors[name], (connectors or {}).get(name)))
        reports.append(compare(name, delivered, confirmed))
    return reports


async def _confirmed(config: Any, given: CountingDeliverer | None) -> dict[Cell, int]:
    from hub.connectors import build_connector

    client: Any = given if given is not None else build_connector(config)
    try:
        counts: dict[Cell, int] = await client.confirmed_counts()
        return counts
    finally:
        if given is None:
            await client.aclose()


def run_job(hub: Hub) -> JobResult:
    """The nightly job: reconcile, audit the outcome, fail when anything differs."""
    reports = reconcile(hub)
    differences = sum(len(r.differences) for r in reports)
    with hub.engine.begin() as conn:
        AuditLog.record(
            conn,
            actor="job:reconcile",
            action="reconcile.checked",
            entity_type="connector",
            entity_id=",".join(r.connector for r in reports)[:64] or "-",
            details={
                "connectors": [
                    {
                        "connector": r.connector,
                        "delivered": r.delivered,
                        "confirmed": r.confirmed,
                        "differences": len(r.differences),
                    }
                    for r in reports
                ]
            },
        )
    return JobResult(
        rows=sum(r.cells for r in reports),
        detail={"reports": [r.as_dict() for r in reports]},
        failed=differences > 0,
    )
