"""Records on their way out: the lifecycle of DESIGN.md, driven by `routes.yaml`.

```
valid ─> verifying ─> pending_approval ─> approved ─> queued ─> delivered
             │               └─> rejected (by the verifikator, with a reason)
             └─> verify_failed (back to the operator, with a reason in Indonesian)
                                                      queued ─> dead ─> (replay) queued
```

`Flow` makes every transition: it is called in the caller's transaction and writes the
record's new state, its outbox rows (verifications and deliveries) and its audit event
together, so a crash at any point loses nothing (the transactional outbox). Network calls
never happen here: the dispatcher does them and hands the answers back to `Flow`.

A route's steps run in order from the record's current `step`: a `verify` step queues one
verification and waits; `approve` waits for the kecamatan (or passes at once when it is
`auto` and no check raised a flag); the deliver steps at the end queue one delivery each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

import orjson
import sqlalchemy as sa

from adapters.base import VerifyAnswer
from hub.audit import AuditLog, utc_timestamp
from hub.crypto import DataProtector
from hub.errors import RoutingError
from hub.messages import Messages
from hub.routes import ApproveStep, DeliverStep, Route, RoutesConfig, VerifyStep, VerifySubject
from hub.schemas import RecordSchema, SchemaRegistry
from hub.stats import Move, count_moves
from hub.store import bulk_insert, bulk_update
from hub.store.tables import outbox, records

Action = Literal["pass", "flag", "verify_failed"]
_SEVERITY: Final[Mapping[str, int]] = {"pass": 0, "flag": 1, "verify_failed": 2}

#: Statuses from which a record still moves without anybody's decision.
OPEN_STATUSES: Final = ("valid", "verifying", "approved", "queued")

OUTBOX_COLUMNS: Final = (
    "record_id",
    "record_version",
    "connector",
    "kind",
    "step",
    "correction",
    "idempotency_key",
    "group_key",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)

#: What entering a route sets on a record (`Flow._enter`).
_ENTERED_COLUMNS: Final = ("status", "route", "step", "flags", "reason", "updated_at")
_RECORD_COLUMNS: Final = (
    records.c.id,
    records.c.record_type,
    records.c.schema_version,
    records.c.natural_key,
    records.c.kode_wilayah,
    records.c.event_date,
    records.c.status,
    records.c.version,
    records.c.route,
    records.c.step,
    records.c.flags,
    records.c.data,
    records.c.pii,
)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a walk along a route stopped: the record's new status and step, what to queue."""

    status: str
    step: int
    messages: tuple[tuple[str, str, int], ...] = ()  # (kind, connector, step index)
    auto_approved: bool = False


class EnteringRecord(NamedTuple):
    """What a record's outbox rows name of it (`Flow.new_messages`)."""

    id: int
    record_type: str
    schema_version: int
    natural_key: bytes
    version: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What `approve`/`reject` did: ids moved on, and ids left alone with why."""

    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def idempotency_key(
    record_type: str,
    schema_version: int,
    natural_key: bytes,
    version: int,
    connector: str,
    kind: str,
) -> str:
    """Stable across retries and processes: schema, natural key, record version, target."""
    text = f"{record_type}.v{schema_version}|{natural_key.hex()}|{version}|{connector}|{kind}"
    return hashlib.sha256(text.encode()).hexdigest()


def event_key(member_keys: Iterable[str]) -> str:
    """The idempotency key of an event made of several outbox rows (one family move)."""
    return hashlib.sha256("|".join(sorted(member_keys)).encode()).hexdigest()


def walk(route: Route, start: int, flagged: bool) -> Placement:
    """Follow `route` from step `start` until a step has to wait."""
    auto = False
    i = start
    steps = route.steps
    while i < len(steps):
        step = steps[i]
        if isinstance(step, VerifyStep):
            return Placement("verifying", i, (("verify", step.connector, i),), auto)
        if isinstance(step, ApproveStep):
            if step.by == "auto" and not flagged:
                auto = True
                i += 1
                continue
            return Placement("pending_approval", i, (), auto)
        deliveries = []
        j = i
        while j < len(steps) and isinstance(steps[j], DeliverStep):
            deliver = steps[j]
            assert isinstance(deliver, DeliverStep)
            deliveries.append(("deliver", deliver.connector, j))
            j += 1
        return Placement("queued", i, tuple(deliveries), auto)
    return Placement("delivered", len(steps), (), auto)


class Flow:
    """Every transition of a record after it was accepted. Methods take the caller's
    connection: the caller owns the transaction."""

    def __init__(
        self,
        routes: RoutesConfig,
        schemas: SchemaRegistry,
        protector: DataProtector,
        messages: Messages,
        *,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.routes = routes
        self.schemas = schemas
        self.protector = protector
        self.messages = messages

    # ------------------------------------------------------------------ reading records

    def values(self, row: Any) -> dict[str, Any]:
        """A stored record's canonical values, PII decrypted (kept in memory only)."""
        values: dict[str, Any] = orjson.loads(row.data)
        aad = row.record_type.encode() + row.natural_key
        values.update(self.protector.open_json(row.pii, aad))
        return values

    def _schema(self, row: Any) -> RecordSchema:
        return self.schemas.get(row.record_type, row.schema_version)

    # ------------------------------------------------------------------ entering routes

    def start_batch(
        self,
        conn: sa.Connection,
        batch_id: int,
        *,
        actor: str,
        entered: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Put the batch's newly accepted records (status `valid`) on their routes.

        `entered` counts, by status, the records the batch's writer already stored on their
        routes (`place_new`, `new_messages`); they are in the batch's audit event too."""
        rows = conn.execute(
            sa.select(*_RECORD_COLUMNS)
            .where(records.c.batch_id == batch_id, records.c.status == "valid")
            .order_by(records.c.id)
        ).all()
        counts = Counter(entered or {})
        counts.update(self._enter(conn, rows))
        total = sum(counts.values())
        if total:
            AuditLog.record(
                conn,
                actor=actor,
                action="batch.routed",
                entity_type="batch",
                entity_id=str(batch_id),
                details={"records": total, **counts},
            )
        return dict(counts)

    def place_new(
        self, record_type: str, kode_wilayah: str, values: Mapping[str, Any]
    ) -> tuple[Route, Placement] | None:
        """Where a new record (version 1) enters its route, from its values in memory: what
        `start_batch` does after reading it back, for a writer that stores it there at once.
        None when no route takes it (it stays `valid` for `start_batch`)."""
        route = self.routes.route_for(record_type, kode_wilayah, values)
        if route is None:
            return None
        return route, walk(route, 0, flagged=False)

    def new_messages(
        self, record: EnteringRecord, values: Mapping[str, Any], placement: Placement, now: str
    ) -> list[tuple[Any, ...]]:
        """Outbox rows (`OUTBOX_COLUMNS`) for a new record placed by `place_new`: a first
        version has no earlier deliveries to correct."""
        return self._messages(record, values, placement, set(), now)

    def start(
        self, conn: sa.Connection, record_ids: Sequence[int], *, actor: str
    ) -> dict[str, int]:
        """Put single records (status `valid`) on their routes, one audit event each."""
        rows = conn.execute(
            sa.select(*_RECORD_COLUMNS).where(
                records.c.id.in_(record_ids), records.c.status == "valid"
            )
        ).all()
        counts = self._enter(conn, rows)
        for row in rows:
            AuditLog.record(
                conn,
                actor=actor,
                action="record.routed",
                entity_type="record",
                entity_id=str(row.id),
                details={"version": row.version},
            )
        return counts

    def _enter(self, conn: sa.Connection, rows: Sequence[Any]) -> dict[str, int]:
        now = utc_timestamp(self.now())
        counts: Counter[str] = Counter()
        updates: list[tuple[Any, ...]] = []  # _ENTERED_COLUMNS, then the id
        moves: list[Move] = []
        messages: list[tuple[Any, ...]] = []
        for row in rows:
            values = self.values(row)
            route = self.routes.route_for(row.record_type, row.kode_wilayah, values)
            if route is None:
                counts["unrouted"] += 1
                continue
            placement = walk(route, 0, flagged=False)
            counts[placement.status] += 1
            had = self._earlier_deliveries(conn, row, now) if row.version > 1 else set()
            messages += self._messages(row, values, placement, had, now)
            if placement.status == "queued":
                messages += self._redeliveries(row, values, route, placement, had, now)
            updates.append((placement.status, route.name, placement.step, None, None, now, row.id))
            moves.append(_move(row, placement.status))
        bulk_update(conn, records, _ENTERED_COLUMNS, "id", updates)
        bulk_insert(conn, outbox, OUTBOX_COLUMNS, messages)
        count_moves(conn, moves)
        return dict(counts)

    def _messages(
        self,
        row: Any,
        values: Mapping[str, Any],
        placement: Placement,
        had: set[str],
        now: str,
    ) -> list[tuple[Any, ...]]:
        """Outbox rows for the messages a placement queues."""
        schema = self._schema(row)
        group = self._group_key(schema, values)
        out = []
        for kind, connector, step in placement.messages:
            key = idempotency_key(
                row.record_type, row.schema_version, row.natural_key, row.version, connector, kind
            )
            out.append(
                (
                    row.id,
                    row.version,
                    connector,
                    kind,
                    step,
                    kind == "deliver" and connector in had,
                    key,
                    group if kind == "deliver" else None,
                    "queued",
                    0,
                    now,
                    now,
                    now,
                )
            )
        return out

    def _redeliveries(
        self,
        row: Any,
        values: Mapping[str, Any],
        route: Route,
        placement: Placement,
        had: set[str],
        now: str,
    ) -> list[tuple[Any, ...]]:
        """A correction also goes to connectors that had the old version but that the
        record's route no longer names."""
        named = {connector for _, connector, _ in placement.messages}
        extra = tuple(("deliver", c, placement.step) for c in sorted(had - named))
        if not extra:
            return []
        return self._messages(row, values, Placement("queued", placement.step, extra), had, now)

    def _earlier_deliveries(self, conn: sa.Connection, row: Any, now: str) -> set[str]:
        """For a new version: supersede older messages not yet sent; return the connectors
        that received an older version (they get this one as a correction)."""
        older = conn.execute(
            sa.select(outbox.c.id, outbox.c.connector, outbox.c.kind, outbox.c.status).where(
                outbox.c.record_id == row.id, outbox.c.record_version < row.version
            )
        ).all()
        stale = [o.id for o in older if o.status == "queued" or o.status == "dead"]
        if stale:
            conn.execute(
                outbox.update()
                .where(outbox.c.id.in_(stale))
                .values(status="superseded", updated_at=now)
            )
        had = {o.connector for o in older if o.kind == "deliver" and o.status == "done"}
        had |= {o.connector for o in older if o.kind == "deliver" and o.status == "in_flight"}
        return had

    def _group_key(self, schema: RecordSchema, values: Mapping[str, Any]) -> bytes | None:
        if not schema.family or any(values.get(f) is None for f in schema.family):
            return None
        text = "\x1f".join(str(values[f]) for f in schema.family)
        return self.protector.blind_index(text, f"family:{schema.record_type}")

    # ------------------------------------------------------------------ verification

    def verified(
        self,
        conn: sa.Connection,
        message: Any,
        answers: Sequence[tuple[VerifySubject, VerifyAnswer | None]],
        *,
        actor: str,
    ) -> str:
        """Apply a verification's answers to its record and move it on. Returns the record's
        new status (or `stale` when the record moved on without this answer)."""
        row = self._current(conn, message.record_id)
        if (
            row.version != message.record_version
            or row.status != "verifying"
            or row.step != message.step
        ):
            return "stale"
        route = self.routes.route(row.route)
        step = route.steps[message.step]
        if not isinstance(step, VerifyStep):
            raise RoutingError(f"step {message.step} of route {route.name} is not a verify step")
        schema = self._schema(row)
        flags: list[str] = orjson.loads(row.flags) if row.flags else []
        reasons: list[str] = []
        codes: dict[str, str] = {}
        for subject, answer in answers:
            if answer is None:
                continue
            action, reason = self.judge(schema, step, subject, answer)
            codes[subject.nik] = answer.code
            if action == "flag":
                flags.append(f"{subject.nik}:{answer.code}")
            elif action == "verify_failed":
                reasons.append(reason)
        now = utc_timestamp(self.now())
        if reasons:
            placement = Placement("verify_failed", message.step)
        else:
            placement = walk(route, message.step + 1, flagged=bool(flags))
        values = self.values(row)
        had = self._earlier_deliveries(conn, row, now) if row.version > 1 else set()
        messages = self._messages(row, values, placement, had, now)
        if placement.status == "queued":
            messages += self._redeliveries(row, values, route, placement, had, now)
        bulk_insert(conn, outbox, OUTBOX_COLUMNS, messages)
        conn.execute(
            records.update()
            .where(records.c.id == row.id)
            .values(
                status=placement.status,
                step=placement.step,
                flags=orjson.dumps(flags).decode() if flags else None,
                reason=" ".join(reasons) or None,
                updated_at=now,
            )
        )
        count_moves(conn, [_move(row, placement.status)])
        AuditLog.record(
            conn,
            actor=actor,
            action="record.verified",
            entity_type="record",
            entity_id=str(row.id),
            details={
                "version": row.version,
                "codes": codes,
                "flags": flags,
                "status": placement.status,
                "auto_approved": placement.auto_approved,
            },
        )
        return placement.status

    def judge(
        self, schema: RecordSchema, step: VerifyStep, subject: VerifySubject, answer: VerifyAnswer
    ) -> tuple[Action, str]:
        """What one answer means for the record under `step`: the action and, for a
        failure or flag, the reason in Indonesian."""
        spec = schema.fields.get(subject.nik)
        label = spec.title if spec else subject.nik
        if answer.code == "00":
            wrong = [name for name, verdict in answer.verdicts.items() if not verdict.match]
            if not wrong:
                return "pass", ""
            titles = []
            for element in wrong:
                target = subject.elements.get(element)
                target_spec = schema.fields.get(target) if target else None
                titles.append(target_spec.title if target_spec else element)
            action = _action(step.mismatch)
            text = self.messages.format("verify_mismatch", label=label, fields=", ".join(titles))
            return action, text
        action = _action(step.on.get(answer.code, "verify_failed"))
        return action, self.messages.format(f"verify_{answer.code}", label=label)

    # ------------------------------------------------------------------ approval

    def approve(
        self, conn: sa.Connection, record_ids: Sequence[int], *, actor: str, note: str | None = None
    ) -> Decision:
        """The kecamatan approves: each record waiting for approval moves on."""
        return self._decide(conn, record_ids, actor=actor, approve=True, reason=note)

    def reject(
        self, conn: sa.Connection, record_ids: Sequence[int], *, actor: str, reason: str
    ) -> Decision:
        """The kecamatan rejects, with a reason the operator reads."""
        if not reason.strip():
            raise ValueError("a rejection needs a reason")
        return self._decide(conn, record_ids, actor=actor, approve=False, reason=reason.strip())

    def _decide(
        self,
        conn: sa.Connection,
        record_ids: Sequence[int],
        *,
        actor: str,
        approve: bool,
        reason: str | None,
    ) -> Decision:
        decision = Decision()
        rows = {
            row.id: row
            for row in conn.execute(
                sa.select(*_RECORD_COLUMNS).where(records.c.id.in_(record_ids))
            ).all()
        }
        now = utc_timestamp(self.now())
        for record_id in record_ids:
            row = rows.get(record_id)
            if row is None:
                decision.skipped[record_id] = "not found"
                continue
            if row.status != "pending_approval":
                decision.skipped[record_id] = f"status is {row.status}"
                continue
            if approve:
                route = self.routes.route(row.route)
                placement = walk(route, row.step + 1, flagged=False)
                values = self.values(row)
                had = self._earlier_deliveries(conn, row, now) if row.version > 1 else set()
                messages = self._messages(row, values, placement, had, now)
                if placement.status == "queued":
                    messages += self._redeliveries(row, values, route, placement, had, now)
                bulk_insert(conn, outbox, OUTBOX_COLUMNS, messages)
                status, step, stored_reason = placement.status, placement.step, None
            else:
                status, step, stored_reason = "rejected", row.step, reason
            conn.execute(
                records.update()
                .where(records.c.id == row.id, records.c.status == "pending_approval")
                .values(status=status, step=step, reason=stored_reason, updated_at=now)
            )
            count_moves(conn, [_move(row, status)])
            details: dict[str, Any] = {"version": row.version, "status": status}
            if reason:
                details["reason"] = reason
            AuditLog.record(
                conn,
                actor=actor,
                action="record.approved" if approve else "record.rejected",
                entity_type="record",
                entity_id=str(row.id),
                details=details,
            )
            decision.done.append(record_id)
        return decision

    # ------------------------------------------------------------------ delivery outcomes

    def delivery_settled(self, conn: sa.Connection, record_ids: Iterable[int]) -> None:
        """After deliveries finished: a record whose every delivery of its current version is
        done becomes `delivered`; one with a dead delivery becomes `dead`."""
        now = utc_timestamp(self.now())
        for record_id in set(record_ids):
            row = self._current(conn, record_id)
            if row.status not in {"queued", "dead"}:
                continue
            statuses = set(
                conn.execute(
                    sa.select(outbox.c.status).where(
                        outbox.c.record_id == record_id,
                        outbox.c.record_version == row.version,
                        outbox.c.kind == "deliver",
                    )
                ).scalars()
            )
            if statuses & {"queued", "in_flight"}:
                new = "queued"
            elif "dead" in statuses:
                new = "dead"
            else:
                new = "delivered"
            if new != row.status:
                conn.execute(
                    records.update()
                    .where(records.c.id == record_id)
                    .values(status=new, updated_at=now)
                )
                count_moves(conn, [_move(row, new)])

    def verification_dead(self, conn: sa.Connection, message: Any, reason: str) -> None:
        """A verification that can never be answered: the record is dead until replayed."""
        row = self._current(conn, message.record_id)
        moved = conn.execute(
            records.update()
            .where(
                records.c.id == message.record_id,
                records.c.version == message.record_version,
                records.c.status == "verifying",
            )
            .values(status="dead", reason=reason, updated_at=utc_timestamp(self.now()))
        ).rowcount
        if moved:
            count_moves(conn, [_move(row, "dead")])

    def revived(self, conn: sa.Connection, message: Any) -> None:
        """A dead message was replayed: its record waits for it again."""
        status = "verifying" if message.kind == "verify" else "queued"
        row = self._current(conn, message.record_id)
        moved = conn.execute(
            records.update()
            .where(
                records.c.id == message.record_id,
                records.c.version == message.record_version,
                records.c.status == "dead",
            )
            .values(status=status, reason=None, updated_at=utc_timestamp(self.now()))
        ).rowcount
        if moved:
            count_moves(conn, [_move(row, status)])

    def _current(self, conn: sa.Connection, record_id: int) -> Any:
        return conn.execute(sa.select(*_RECORD_COLUMNS).where(records.c.id == record_id)).one()


def _move(row: Any, new: str) -> Move:
    return Move(row.record_type, row.kode_wilayah, row.event_date, row.status, new)


def _action(text: str) -> Action:
    if text not in _SEVERITY:
        raise RoutingError(f"unknown verification action {text!r}")
    return text  # type: ignore[return-value]
