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

`verify_chain` names the first break (`BreakKind`: edited, deleted, inserted, reordered,
truncated, head, checkpoint) with its position; `create_checkpoint` signs the head with the
hub's Ed25519 audit key, and signed checkpoints (stored or exported) catch a rewritten tail.
`record_config_digest` audits a configuration file loaded with another digest. See
docs/custody.md.

```python
with engine.begin() as conn:
    AuditLog.record(conn, actor="operator:3273011001", action="batch.ingested",
                    entity_type="batch", entity_id="42", details={"rows": 120, "invalid": 3})
    assert verify_chain(conn).ok
```
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.dialects import postgresql, sqlite

from hub.store.tables import audit_checkpoints, audit_events, audit_head, config_digests

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


#: What `verify_chain` says a break is: an event whose content no longer matches its hash
#: (`edited`), a missing event (`deleted`), an event that does not belong (`inserted`),
#: events out of order (`reordered`), events missing at the end (`truncated`), a head that
#: does not match the chain (`head`), or a chain that differs from a signed checkpoint
#: (`checkpoint`: rewritten, or the checkpoint itself is forged).
BreakKind = Literal["edited", "deleted", "inserted", "reordered", "truncated", "head", "checkpoint"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of `verify_chain`: `checked` events were read; the first break, if any, with
    the id of the event where it shows, its 1-based `position` in the chain and its `kind`."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None
    position: int | None = None
    kind: BreakKind | None = None
    checkpoints: int = 0  # signed checkpoints the chain was checked against


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


def lock_chain_head(conn: sa.Connection) -> str:
    """Lock the chain head for the caller's transaction (as an append does); its hash.

    Work that must not run twice at once (a key rotation starting) takes it first."""
    return _lock_head(conn)


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


def _recomputed(row: Any) -> str:
    return event_hash(
        row.prev_hash,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        details_json=row.details,
    )


@dataclass(frozen=True, slots=True)
class _Seen:
    """The last two events walked: enough to tell an inserted event from a deleted one."""

    id: int
    hash: str
    before: str  # the hash of the event before this one


def _classify(
    row: Any, position: int, prev: _Seen, lookahead: list[Any]
) -> tuple[BreakKind, str, int, int]:
    """Name the break at `row`, whose own hash is right but whose link to `prev` is not:
    the kind, the reason, and the id and position of the event to blame."""
    where = f"event {row.id} (position {position})"
    later = {r.hash: r.id for r in lookahead}
    if row.prev_hash == prev.before:
        return (
            "inserted",
            f"event {prev.id} (position {position - 1}) was inserted: "
            f"{where} links to the event before it",
            prev.id,
            position - 1,
        )
    if row.prev_hash not in later and lookahead and lookahead[0].prev_hash == prev.hash:
        return (
            "inserted",
            f"{where} was inserted: the next event {lookahead[0].id} links to event {prev.id}",
            row.id,
            position,
        )
    if row.prev_hash in later or any(r.prev_hash == prev.hash for r in lookahead):
        partner = later.get(row.prev_hash) or next(
            r.id for r in lookahead if r.prev_hash == prev.hash
        )
        return (
            "reordered",
            f"{where} is out of order: it belongs after event {partner}, not after event {prev.id}",
            row.id,
            position,
        )
    if prev.id and row.id == prev.id + 1:
        return (
            "edited",
            f"event {prev.id} (position {position - 1}) was edited and re-hashed: "
            f"the next event {row.id} links to its original hash",
            prev.id,
            position - 1,
        )
    return (
        "deleted",
        f"event(s) missing before {where}: it links to no stored event "
        f"(the previous stored event is {prev.id or 'none'})",
        row.id,
        position,
    )


def verify_chain(
    conn: sa.Connection,
    *,
    batch_size: int = 1000,
    checkpoints: Sequence[Checkpoint] = (),
    public_key: Ed25519PublicKey | None = None,
    lookahead: int = 64,
) -> VerifyResult:
    """Walk every event in id order, recomputing each hash and each link, then check the head.

    Stops at the first break and names it (see `BreakKind`) with the event id and position.
    `checkpoints` (stored or exported) are checked too: each signature against `public_key`
    (the hub's audit key) and the chain at each checkpoint's event against its signed hash and
    count, so a tail rewritten with fresh hashes is caught as well.
    """
    marks: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        if public_key is not None and not checkpoint.signed_by(public_key):
            return VerifyResult(
                False,
                0,
                checkpoint.last_id,
                f"checkpoint of {checkpoint.created_at} has a bad signature (forged or "
                "signed with another key)",
                kind="checkpoint",
            )
        marks.setdefault(checkpoint.last_id, []).append(checkpoint)
    prev, checked = _Seen(0, GENESIS_HASH, ""), 0
    query = sa.select(audit_events).order_by(audit_events.c.id)
    result = conn.execution_options(yield_per=batch_size).execute(query)
    rows = iter(result)
    pending: list[Any] = []
    matched = 0
    try:
        while True:
            row = pending.pop(0) if pending else next(rows, None)
            if row is None:
                break
            checked += 1
            if row.hash != _recomputed(row):
                return VerifyResult(
                    False,
                    checked,
                    row.id,
                    f"event {row.id} (position {checked}) was edited: its hash does not match "
                    "its content",
                    checked,
                    "edited",
                    matched,
                )
            if row.prev_hash != prev.hash:
                while len(pending) < lookahead and (more := next(rows, None)) is not None:
                    pending.append(more)
                kind, reason, bad_id, position = _classify(row, checked, prev, pending)
                return VerifyResult(False, checked, bad_id, reason, position, kind, matched)
            for checkpoint in marks.pop(row.id, []):
                if row.hash != checkpoint.hash or checked != checkpoint.events:
                    return _checkpoint_break(checkpoint, checked, row.id)
                matched += 1
            prev = _Seen(row.id, row.hash, prev.hash)
    finally:
        result.close()
    for checkpoint in (c for group in marks.values() for c in group):
        if checkpoint.last_id > prev.id:
            reason = (
                f"the signed checkpoint of {checkpoint.created_at} covers event "
                f"{checkpoint.last_id} ({checkpoint.events} events) but the chain ends at "
                f"event {prev.id} ({checked} events): events were deleted"
            )
        else:
            reason = (
                f"event {checkpoint.last_id} of the signed checkpoint of "
                f"{checkpoint.created_at} is missing: the chain was rewritten"
            )
        return VerifyResult(False, checked, checkpoint.last_id, reason, None, "checkpoint", matched)
    head = conn.execute(
        sa.select(audit_head.c.last_id, audit_head.c.hash).where(audit_head.c.id == _HEAD_ID)
    ).one_or_none()
    head_id, head_hash = (0, GENESIS_HASH) if head is None else (head.last_id, head.hash)
    if head_id > prev.id:
        return VerifyResult(
            False,
            checked,
            head_id or None,
            f"head points at event {head_id} but the chain ends at event {prev.id}: "
            "the last event(s) were deleted",
            checked + 1,
            "truncated",
            matched,
        )
    if head_id < prev.id:
        return VerifyResult(
            False,
            checked,
            prev.id,
            f"event {prev.id} (position {checked}) was inserted after the head (event {head_id})",
            checked,
            "inserted",
            matched,
        )
    if head_hash != prev.hash:
        return VerifyResult(
            False,
            checked,
            head_id or None,
            "head hash differs from the last event's hash",
            checked,
            "head",
            matched,
        )
    return VerifyResult(True, checked, checkpoints=matched)


def _checkpoint_break(checkpoint: Checkpoint, position: int, event_id: int) -> VerifyResult:
    return VerifyResult(
        False,
        position,
        event_id,
        f"event {event_id} (position {position}) differs from the signed checkpoint of "
        f"{checkpoint.created_at} (hash or event count): the chain was rewritten up to here",
        position,
        "checkpoint",
    )


# ------------------------------------------------------------------ signed checkpoints

CHECKPOINT_FORMAT: Final = "lampid-hub-audit-checkpoint/1"


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """The id of an audit key: the first 16 bytes of sha256 of its raw public bytes, in hex."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain head at one moment (`last_id`, `hash`, number of `events`), signed."""

    last_id: int
    hash: str
    events: int
    created_at: str
    key_id: str
    signature: str  # hex of the Ed25519 signature of `message()`
    public_key: str = ""  # base64 of the raw public key (in exported files)

    def message(self) -> bytes:
        return (
            f"{CHECKPOINT_FORMAT}\n{self.last_id}\n{self.events}\n{self.hash}\n{self.created_at}"
        ).encode()

    def signed_by(self, public_key: Ed25519PublicKey) -> bool:
        if self.key_id != key_fingerprint(public_key):
            return False
        try:
            public_key.verify(bytes.fromhex(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "last_id": self.last_id,
            "hash": self.hash,
            "events": self.events,
            "created_at": self.created_at,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """A checkpoint from an exported file's JSON; `ValueError` naming what is wrong."""
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not an audit checkpoint (format {CHECKPOINT_FORMAT} expected)")
        try:
            checkpoint = cls(
                int(data["last_id"]),
                str(data["hash"]),
                int(data["events"]),
                str(data["created_at"]),
                str(data["key_id"]),
                str(data["signature"]),
                str(data.get("public_key", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"audit checkpoint is incomplete or malformed: {exc}") from None
        if not re.fullmatch(r"[0-9a-f]{64}", checkpoint.hash) or checkpoint.last_id < 0:
            raise ValueError("audit checkpoint has a malformed hash or event id")
        return checkpoint


def create_checkpoint(
    conn: sa.Connection, signer: Ed25519PrivateKey, *, actor: str = "system"
) -> Checkpoint:
    """Append an `audit.checkpoint` event, then sign and store the head (that event).

    Run inside the caller's transaction; the head lock serialises it with every append.
    """
    previous = conn.execute(sa.select(sa.func.count()).select_from(audit_checkpoints)).scalar_one()
    event = AuditLog.record(
        conn,
        actor=actor,
        action="audit.checkpoint",
        entity_type="audit",
        entity_id="head",
        details={"checkpoints_before": int(previous)},
    )
    events = conn.execute(
        sa.select(sa.func.count()).select_from(audit_events).where(audit_events.c.id <= event.id)
    ).scalar_one()
    public = signer.public_key()
    unsigned = Checkpoint(
        event.id,
        event.hash,
        int(events),
        utc_timestamp(),
        key_fingerprint(public),
        "",
        base64.b64encode(public.public_bytes_raw()).decode("ascii"),
    )
    checkpoint = dataclasses.replace(unsigned, signature=signer.sign(unsigned.message()).hex())
    conn.execute(
        audit_checkpoints.insert().values(
            last_id=checkpoint.last_id,
            hash=checkpoint.hash,
            events=checkpoint.events,
            created_at=checkpoint.created_at,
            key_id=checkpoint.key_id,
            signature=checkpoint.signature,
        )
    )
    return checkpoint


def stored_checkpoints(conn: sa.Connection, public_key: Ed25519PublicKey) -> list[Checkpoint]:
    """Every stored checkpoint (the public key filled in from the hub's own key)."""
    raw = base64.b64encode(public_key.public_bytes_raw()).decode("ascii")
    rows = conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.id))
    return [
        Checkpoint(r.last_id, r.hash, r.events, r.created_at, r.key_id, r.signature, raw)
        for r in rows
    ]


def latest_checkpoint(conn: sa.Connection, public_key: Ed25519PublicKey) -> Checkpoint | None:
    found = stored_checkpoints(conn, public_key)
    return found[-1] if found else None


# ------------------------------------------------------------------ configuration changes


def record_config_digest(
    engine: sa.Engine, name: str, path: Path, *, actor: str = "system"
) -> bool:
    """Remember the sha256 of a configuration file just loaded; when it differs from the one
    loaded last time, audit `config.changed` with both digests (the first load is only
    remembered). True when it changed. Only the digest enters the audit trail."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    select = sa.select(config_digests.c.sha256).where(config_digests.c.name == name)
    with engine.connect() as conn:
        if conn.execute(select).scalar_one_or_none() == digest:
            return False
    with engine.begin() as conn:
        _lock_head(conn)  # two processes loading the same new file audit it once
        previous = conn.execute(select).scalar_one_or_none()
        if previous == digest:
            return False
        values = {"sha256": digest, "updated_at": utc_timestamp()}
        if previous is None:  # the first load: remembered, nothing changed
            conn.execute(config_digests.insert().values(name=name, **values))
            return False
        conn.execute(config_digests.update().where(config_digests.c.name == name).values(**values))
        AuditLog.record(
            conn,
            actor=actor,
            action="config.changed",
            entity_type="config",
            entity_id=name,
            details={"sha256": digest, "previous_sha256": previous, "file": path.name},
        )
    return True
