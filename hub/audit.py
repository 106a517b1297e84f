"""The audit trail: append-only, hash-chained events written in the caller's transaction.

Each event's hash is `sha256(prev_hash + canonical JSON of occurred_at, actor, action,
entity_type, entity_id and details)`, so editing, deleting or reordering any stored event
breaks the chain, and `verify_chain` finds the first event where it breaks. The head of the
chain (`audit_head`, row id 1) is read and updated in the same transaction as the append:
on PostgreSQL the row is locked with `SELECT ... FOR UPDATE`, on SQLite the append takes the
database write lock first, so concurrent writers queue up and the chain never forks.

**No PII in `details`.** Callers pass counts, ids, codes and hashes only: never a NIK, a
name or an address, not even in an error message. Events are kept for the whole retention
period and shown to auditors, and the chain makes them impossible to redact later.
As a last guard, `record` refuses any 16-digit number (the shape of a NIK or No. KK).

```python
with engine.begin() as conn:
    AuditLog.record(conn, actor="operator:3273011001", action="batch.ingested",
                    entity_type="batch", entity_id="42", details={"rows": 120, "invalid": 3})
    assert verify_chain(conn).ok
```
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.store.tables import audit_events, audit_head

GENESIS_HASH: Final = "0" * 64
_HEAD_ID: Final = 1
_NIK_LIKE: Final = re.compile(r"\d{16}")
_NIK_NOISE: Final = str.maketrans("", "", " .-'\u00a0")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One stored audit event; `details` as written (canonical JSON, sorted keys)."""

    id: int
    occurred_at: str
    actor: str
    action: str
    entity_type: str
    entity_id: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of `verify_chain`: `checked` events were read; the first break, if any."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None


def utc_timestamp(moment: dt.datetime | None = None) -> str:
    """ISO-8601 UTC with microseconds and `Z`, the store's timestamp text for audit events."""
    moment = dt.datetime.now(dt.UTC) if moment is None else moment.astimezone(dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_hash(
    prev_hash: str,
    *,
    occurred_at: str,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    details_json: str | bytes,
) -> str:
    """The chain hash of one event; `details_json` is the stored canonical JSON text."""
    details = details_json.encode() if isinstance(details_json, str) else details_json
    content = orjson.dumps(
        {
            "action": action,
            "actor": actor,
            "details": orjson.Fragment(details),
            "entity_id": entity_id,
            "entity_type": entity_type,
            "occurred_at": occurred_at,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash.encode("ascii") + content).hexdigest()


def canonical_details(details: Mapping[str, Any]) -> str:
    """`details` as canonical JSON (sorted keys, no spaces); `ValueError` if not JSON or NIKs."""
    try:
        text = orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        raise ValueError(f"audit details must be JSON with string keys: {exc}") from None
    _refuse_nik(details, "details")
    return text


def _looks_like_nik(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 10**15 <= abs(value) < 10**16
    return isinstance(value, str) and _NIK_LIKE.fullmatch(value.translate(_NIK_NOISE)) is not None


def _refuse_nik(value: object, where: str) -> None:
    """Raise if any value in a JSON-like structure has the shape of a NIK or No. KK."""
    if _looks_like_nik(value):
        raise ValueError(f"audit {where} holds a 16-digit number (a NIK?); pass an id or hash")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_nik(key, where)
            _refuse_nik(item, f"{where}.{key}")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _refuse_nik(item, where)


class AuditLog:
    """Appends hash-chained events; call `AuditLog.record(conn, ...)` inside a transaction."""

    @staticmethod
    def record(
        conn: sa.Connection,
        *,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        details: Mapping[str, Any],
        occurred_at: dt.datetime | None = None,
    ) -> AuditEvent:
        """Append one event after the current head and move the head to it.

        `details` holds no PII (see the module docstring); `entity_id` is an id, never a NIK.
        The event is committed or rolled back with the caller's transaction.
        """
        _refuse_nik(actor, "actor")
        _refuse_nik(entity_id, "entity_id")
        details_json = canonical_details(details)
        when = utc_timestamp(occurred_at)
        prev_hash = _lock_head(conn)
        digest = event_hash(
            prev_hash,
            occurred_at=when,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            details_json=details_json,
        )
        event_id = conn.execute(
            audit_events.insert()
            .values(
                occurred_at=when,
                actor=actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                details=details_json,
                prev_hash=prev_hash,
                hash=digest,
            )
            .returning(audit_events.c.id)
        ).scalar_one()
        conn.execute(
            audit_head.update()
            .where(audit_head.c.id == _HEAD_ID)
            .values(last_id=event_id, hash=digest)
        )
        return AuditEvent(
            event_id,
            when,
            actor,
            action,
            entity_type,
            entity_id,
            orjson.loads(details_json),
            prev_hash,
            digest,
        )

    @staticmethod
    def verify(conn: sa.Connection) -> VerifyResult:
        return verify_chain(conn)


def _lock_head(conn: sa.Connection) -> str:
    """Lock the chain head for this transaction and return its hash (creating it if absent)."""
    select_head = sa.select(audit_head.c.hash).where(audit_head.c.id == _HEAD_ID)
    if conn.dialect.name == "sqlite":
        # A write first: it takes SQLite's database write lock before the head is read.
        conn.execute(
            audit_head.update().where(audit_head.c.id == _HEAD_ID).values(hash=audit_head.c.hash)
        )
    else:
        select_head = select_head.with_for_update()
    head = conn.execute(select_head).scalar_one_or_none()
    if head is None:  # tables made without the migration (which inserts the genesis row)
        insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(audit_head)
            .values(id=_HEAD_ID, last_id=0, hash=GENESIS_HASH)
            .on_conflict_do_nothing()
        )
        head = conn.execute(select_head).scalar_one()
    return str(head)


def verify_chain(conn: sa.Connection, *, batch_size: int = 1000) -> VerifyResult:
    """Walk every event in id order, recomputing each hash and each link, then check the head.

    Finds edited events (hash mismatch), deleted or reordered ones (broken link) and a cut-off
    tail (the head points past the last event). Stops at the first break.
    """
    prev_hash, last_id, checked = GENESIS_HASH, 0, 0
    query = sa.select(audit_events).order_by(audit_events.c.id)
    rows = conn.execution_options(yield_per=batch_size).execute(query)
    for row in rows:
        checked += 1
        if row.prev_hash != prev_hash:
            rows.close()
            return VerifyResult(
                False, checked, row.id, "prev_hash does not match the previous event's hash"
            )
        expected = event_hash(
            row.prev_hash,
            occurred_at=row.occurred_at,
            actor=row.actor,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            details_json=row.details,
        )
        if row.hash != expected:
            rows.close()
            return VerifyResult(False, checked, row.id, "hash does not match the event's content")
        prev_hash, last_id = row.hash, row.id
    head = conn.execute(
        sa.select(audit_head.c.last_id, audit_head.c.hash).where(audit_head.c.id == _HEAD_ID)
    ).one_or_none()
    head_id, head_hash = (0, GENESIS_HASH) if head is None else (head.last_id, head.hash)
    if head_id != last_id or head_hash != prev_hash:
        return VerifyResult(
            False,
            checked,
            head_id or None,
            f"head points at event {head_id} but the chain ends at event {last_id}"
            if head_id != last_id
            else "head hash differs from the last event's hash",
        )
    return VerifyResult(True, checked)
