"""The hash-chained audit trail: appends, verification, tampering, concurrency."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import orjson
import pytest
import sqlalchemy as sa

from hub.audit import GENESIS_HASH, AuditLog, event_hash, verify_chain
from hub.store.tables import audit_events, audit_head, metadata

WHEN = dt.datetime(2025, 8, 17, 10, 0, 0, 123456, tzinfo=dt.UTC)


def append(conn, n=1, **overrides):
    events = []
    for i in range(n):
        values = {
            "actor": "operator:32.73.01.1001",
            "action": "batch.ingested",
            "entity_type": "batch",
            "entity_id": str(i + 1),
            "details": {"rows": 10 + i, "invalid": i, "file_sha256": "ab" * 32},
        }
        events.append(AuditLog.record(conn, **{**values, **overrides}))
    return events


def test_events_chain_from_the_genesis_hash(engine):
    with engine.begin() as conn:
        first, second, third = append(conn, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert first.id < second.id < third.id
    with engine.connect() as conn:
        assert conn.execute(sa.select(audit_head)).one() == (1, third.id, third.hash)
        result = verify_chain(conn)
        assert AuditLog.verify(conn) == result
    assert (result.ok, result.checked, result.first_bad_id, result.reason) == (True, 3, None, None)


def test_hash_covers_exactly_the_documented_fields(engine):
    """Pins the format: a change to it must be deliberate (old chains must still verify)."""
    with engine.begin() as conn:
        event = AuditLog.record(
            conn,
            actor="admin",
            action="wilayah.imported",
            entity_type="wilayah",
            entity_id="-",
            details={"inserted": 29, "desa": 22},
            occurred_at=WHEN,
        )
    content = (
        b'{"action":"wilayah.imported","actor":"admin","details":{"desa":22,"inserted":29},'
        b'"entity_id":"-","entity_type":"wilayah","occurred_at":"2025-08-17T10:00:00.123456Z"}'
    )
    assert event.hash == hashlib.sha256(GENESIS_HASH.encode() + content).hexdigest()
    assert event.occurred_at == "2025-08-17T10:00:00.123456Z"
    assert event.details == {"desa": 22, "inserted": 29}
    with engine.connect() as conn:
        stored = conn.execute(sa.select(audit_events.c.details)).scalar_one()
    assert stored == '{"desa":22,"inserted":29}'  # canonical: sorted keys, no spaces


def test_local_times_are_stored_in_utc(engine):
    wib = dt.timezone(dt.timedelta(hours=7))
    with engine.begin() as conn:
        event = append(conn, occurred_at=dt.datetime(2025, 8, 17, 17, 0, tzinfo=wib))[0]
    assert event.occurred_at == "2025-08-17T10:00:00.000000Z"


def test_rolled_back_events_leave_no_trace(engine):
    with engine.begin() as conn:
        kept = append(conn)[0]
    with engine.connect() as conn:
        transaction = conn.begin()
        append(conn, 2)
        transaction.rollback()  # the batch failed
    with engine.begin() as conn:
        after = append(conn)[0]
        assert after.prev_hash == kept.hash
        assert verify_chain(conn).ok


def tamper(engine, statement):
    with engine.begin() as conn:
        conn.execute(statement)
    with engine.connect() as conn:
        return verify_chain(conn)


@pytest.mark.parametrize(
    "values",
    [
        {"details": '{"invalid":0,"rows":10}'},
        {"details": '{"file_sha256":"' + "ab" * 32 + '", "invalid":1,"rows":11}'},  # a space
        {"actor": "admin"},
        {"action": "batch.failed"},
        {"entity_id": "99"},
        {"entity_type": "record"},
        {"occurred_at": "2025-01-01T00:00:00.000000Z"},
    ],
)
def test_an_edited_event_is_found(engine, values):
    with engine.begin() as conn:
        events = append(conn, 4)
    result = tamper(
        engine, audit_events.update().where(audit_events.c.id == events[1].id).values(**values)
    )
    assert not result.ok
    assert result.first_bad_id == events[1].id
    assert result.checked == 2
    assert (result.kind, result.position) == ("edited", 2)
    assert result.reason == (
        f"event {events[1].id} (position 2) was edited: its hash does not match its content"
    )


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(engine):
    with engine.begin() as conn:
        events = append(conn, 3)
    forged = hashlib.sha256(b"forged").hexdigest()
    result = tamper(
        engine,
        audit_events.update().where(audit_events.c.id == events[1].id).values(hash=forged),
    )
    assert (result.ok, result.first_bad_id) == (False, events[1].id)
    # Even a forger who fixes the edited row's own hash is caught one row later.
    with engine.begin() as conn:
        conn.execute(
            audit_events.update()
            .where(audit_events.c.id == events[1].id)
            .values(hash=events[1].hash, entity_id="2")
        )
    with engine.connect() as conn:
        assert verify_chain(conn).ok
        row = conn.execute(sa.select(audit_events).where(audit_events.c.id == events[1].id)).one()
    rehashed = event_hash(
        row.prev_hash,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id="changed",
        details_json=row.details,
    )
    result = tamper(
        engine,
        audit_events.update()
        .where(audit_events.c.id == events[1].id)
        .values(entity_id="changed", hash=rehashed),
    )
    # The next event still links to the original hash: the edited event is named.
    assert (result.ok, result.first_bad_id, result.kind) == (False, events[1].id, "edited")
    assert "re-hashed" in (result.reason or "")


def test_a_deleted_event_is_found(engine):
    with engine.begin() as conn:
        events = append(conn, 4)
    result = tamper(engine, audit_events.delete().where(audit_events.c.id == events[1].id))
    assert (result.ok, result.first_bad_id, result.kind) == (False, events[2].id, "deleted")
    assert result.position == 2


def test_a_cut_off_tail_is_found(engine):
    with engine.begin() as conn:
        events = append(conn, 3)
    result = tamper(engine, audit_events.delete().where(audit_events.c.id == events[2].id))
    assert not result.ok
    assert result.checked == 2
    expected = (
        f"head points at event {events[2].id} but the chain ends at event {events[1].id}: "
        "the last event(s) were deleted"
    )
    assert (result.reason, result.kind) == (expected, "truncated")


def test_an_emptied_table_is_found(engine):
    with engine.begin() as conn:
        append(conn, 2)
    result = tamper(engine, audit_events.delete())
    assert (result.ok, result.checked) == (False, 0)


def test_a_moved_head_is_found(engine):
    with engine.begin() as conn:
        append(conn, 2)
    result = tamper(engine, audit_head.update().values(hash="f" * 64))
    assert (result.ok, result.reason) == (False, "head hash differs from the last event's hash")


def test_an_empty_trail_verifies(engine):
    with engine.connect() as conn:
        assert verify_chain(conn).ok


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"nik": "3273014101900001"}, "details"),
        ({"nik": 3273014101900001}, "details"),
        ({"nested": {"list": ["ok", "3273 0141 0190 0001"]}}, "details"),
        ({"3273014101900001": 1}, "details"),
    ],
)
def test_details_that_look_like_a_nik_are_refused(engine, details, field):
    with engine.begin() as conn, pytest.raises(ValueError, match=f"audit {field}.*16-digit"):
        append(conn, details=details)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar() == 0


def test_ids_and_hashes_are_allowed(engine):
    digest = "1234567890123456" + "a" * 48  # hex that starts with 16 digits is not a NIK
    with engine.begin() as conn:
        append(conn, details={"records_digest": digest, "count": 123456789012345})


@pytest.mark.parametrize("field", ["entity_id", "actor"])
def test_a_nik_as_entity_or_actor_is_refused(engine, field):
    with engine.begin() as conn, pytest.raises(ValueError, match=f"audit {field}"):
        append(conn, **{field: "3273014101900001"})


@pytest.mark.parametrize("details", [{1: "int key"}, {"obj": object()}])
def test_details_must_be_json(engine, details):
    with engine.begin() as conn, pytest.raises(ValueError, match="JSON"):
        append(conn, details=details)


def test_head_row_is_created_when_the_migration_did_not(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            events = append(conn, 2)
            assert events[0].prev_hash == GENESIS_HASH
            assert verify_chain(conn).ok
    finally:
        engine.dispose()


def test_concurrent_writers_never_fork_the_chain(engine):
    writers, per_writer = 4, 10
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                with engine.begin() as conn:
                    append(conn, entity_id=f"{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        result = verify_chain(conn)
        hashes = conn.execute(sa.select(audit_events.c.prev_hash)).scalars().all()
    assert (result.ok, result.checked) == (True, writers * per_writer)
    assert len(set(hashes)) == len(hashes)  # no two events share a predecessor


def test_details_round_trip(engine):
    details = {"rows": 3, "ratio": 0.25, "ok": True, "missing": None, "codes": ["a", "b"]}
    with engine.begin() as conn:
        event = append(conn, details=details)[0]
    assert event.details == details
    with engine.connect() as conn:
        stored = conn.execute(sa.select(audit_events.c.details)).scalar_one()
    assert orjson.loads(stored) == details
