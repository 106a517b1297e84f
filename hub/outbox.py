"""What is waiting, what failed and why: outbox status, dead letters, replay, resume.

Read by `hub outbox status`, `hub dlq ...` and (later) the API. Replays and resumes are
state changes: each writes its audit event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from hub.audit import AuditLog, utc_timestamp
from hub.flow import Flow
from hub.store.tables import connector_state, outbox, records


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """One connector as `hub outbox status` shows it."""

    connector: str
    queued: int = 0
    in_flight: int = 0
    delivered: int = 0
    dead: int = 0
    oldest_queued_s: float | None = None
    state: str = "running"
    reason: str | None = None
    paused_until: str | None = None
    breaker: str | None = None
    quota_left: int | None = None
    quota_resets_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that will not be sent again unless replayed."""

    id: int
    connector: str
    kind: str
    record_id: int
    record_type: str
    record_version: int
    attempts: int
    code: str | None
    error: str | None
    failed_at: str
    event_key: str | None

    @classmethod
    def from_row(cls, row: Any) -> DeadLetter:
        """From an outbox row joined with its record's type."""
        return cls(
            id=row.id,
            connector=row.connector,
            kind=row.kind,
            record_id=row.record_id,
            record_type=row.record_type,
            record_version=row.record_version,
            attempts=row.attempts,
            code=row.last_code,
            error=row.last_error,
            failed_at=row.updated_at,
            event_key=row.event_key,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReplayResult:
    replayed: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def status(conn: sa.Connection, connectors: Sequence[str] = ()) -> list[ConnectorStatus]:
    """Per connector: message counts by state, the oldest queued age, breaker and quota."""
    counts: dict[str, dict[str, int]] = {name: {} for name in connectors}
    for name, state, n in conn.execute(
        sa.select(outbox.c.connector, outbox.c.status, sa.func.count()).group_by(
            outbox.c.connector, outbox.c.status
        )
    ):
        counts.setdefault(name, {})[state] = n
    oldest = dict(
        conn.execute(
            sa.select(outbox.c.connector, sa.func.min(outbox.c.created_at))
            .where(outbox.c.status.in_(["queued", "in_flight"]))
            .group_by(outbox.c.connector)
        ).all()
    )
    states = {row.connector: row for row in conn.execute(sa.select(connector_state))}
    now = dt.datetime.now(dt.UTC)
    out = []
    for name in sorted(counts):
        by = counts[name]
        state = states.get(name)
        breaker = orjson.loads(state.breaker).get("state") if state and state.breaker else None
        first = oldest.get(name)
        age = (now - _parse(first)).total_seconds() if first else None
        out.append(
            ConnectorStatus(
                connector=name,
                queued=by.get("queued", 0),
                in_flight=by.get("in_flight", 0),
                delivered=by.get("done", 0),
                dead=by.get("dead", 0),
                oldest_queued_s=round(age, 1) if age is not None else None,
                state=state.state if state else "running",
                reason=state.reason if state else None,
                paused_until=state.paused_until if state else None,
                breaker=breaker,
                quota_left=state.quota_left if state else None,
                quota_resets_at=state.quota_resets_at if state else None,
            )
        )
    return out


def dead_letters(
    conn: sa.Connection, *, connector: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    query = (
        sa.select(outbox, records.c.record_type)
        .join(records, records.c.id == outbox.c.record_id)
        .where(outbox.c.status == "dead")
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if connector:
        query = query.where(outbox.c.connector == connector)
    return [DeadLetter.from_row(row) for row in conn.execute(query)]


def dead_letter(conn: sa.Connection, message_id: int) -> DeadLetter | None:
    row = conn.execute(
        sa.select(outbox, records.c.record_type)
        .join(records, records.c.id == outbox.c.record_id)
        .where(outbox.c.id == message_id, outbox.c.status == "dead")
    ).one_or_none()
    return DeadLetter.from_row(row) if row is not None else None


def replay(
    conn: sa.Connection,
    flow: Flow,
    message_ids: Sequence[int] | None,
    *,
    actor: str,
    connector: str | None = None,
) -> ReplayResult:
    """Queue dead messages again with a fresh attempt count (`None`: every dead message,
    optionally of one connector). Messages of one event come back together."""
    result = ReplayResult()
    query = sa.select(outbox).where(outbox.c.status == "dead")
    if message_ids is not None:
        query = query.where(outbox.c.id.in_(message_ids))
    if connector:
        query = query.where(outbox.c.connector == connector)
    rows = list(conn.execute(query))
    found = {row.id for row in rows}
    for message_id in message_ids or ():
        if message_id not in found:
            result.skipped[message_id] = "not a dead letter"
    events = {row.event_key for row in rows if row.event_key}
    if events:
        rows += [
            row
            for row in conn.execute(
                sa.select(outbox).where(outbox.c.event_key.in_(events), outbox.c.status == "dead")
            )
            if row.id not in found
        ]
    now = utc_timestamp()
    for row in rows:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == row.id, outbox.c.status == "dead")
            .values(status="queued", attempts=0, next_attempt_at=now, updated_at=now)
        )
        flow.revived(conn, row)
        AuditLog.record(
            conn,
            actor=actor,
            action="outbox.replayed",
            entity_type="outbox",
            entity_id=str(row.id),
            details={"connector": row.connector, "record": row.record_id, "code": row.last_code},
        )
        result.replayed.append(row.id)
    return result


def resume(conn: sa.Connection, connector: str, *, actor: str) -> bool:
    """Let a stopped connector send again (after an admin fixed its credentials or IP)."""
    row = conn.execute(
        sa.select(connector_state).where(connector_state.c.connector == connector)
    ).one_or_none()
    if row is None or row.state != "stopped":
        return False
    conn.execute(
        connector_state.update()
        .where(connector_state.c.connector == connector)
        .values(state="running", reason=None, updated_at=utc_timestamp())
    )
    AuditLog.record(
        conn,
        actor=actor,
        action="connector.resumed",
        entity_type="connector",
        entity_id=connector,
        details={"was": row.reason},
    )
    return True


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
