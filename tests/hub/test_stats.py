"""The statistics read model always equals counting the records themselves."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from hub import outbox as ops
from hub import stats as stats_module
from hub.audit import AuditLog
from hub.flow import Flow
from hub.stats import Move, count_moves, month_of, tally, tally_new
from hub.store.tables import record_counts, records
from tests.builders import KELAHIRAN_HEADER, PINDAH_HEADER, kelahiran_row, pindah_row
from tests.hub.test_dispatcher import births, dispatch, ingest
from tests.sandbox import FATHER, Sandbox, mother


def counted(hub) -> dict[tuple[str, str, str, str], int]:
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(record_counts)).all()
    return {(r.record_type, r.status, r.kode_wilayah, r.month): r.count for r in rows if r.count}


def truth(hub) -> dict[tuple[str, str, str, str], int]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                records.c.record_type,
                records.c.status,
                records.c.kode_wilayah,
                records.c.event_date,
            )  # fmt: skip
        ).all()
    out: dict[tuple[str, str, str, str], int] = {}
    for t, s, k, d in rows:
        key = (t, s, k, month_of(d))
        out[key] = out.get(key, 0) + 1
    return out


def test_counts_follow_every_transition(routed_hub, tmp_path):
    rows = [*births(3), kelahiran_row(4)]  # mother 4 is unknown: verify_failed
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, rows, "kelahiran")
    assert counted(routed_hub) == truth(routed_hub)
    ingest(routed_hub, tmp_path, PINDAH_HEADER, [pindah_row("3273011505900005")], "pindah", "p.csv")
    people = [mother(1), mother(2), mother(3), FATHER]
    dispatch(routed_hub, Sandbox(routed_hub.routes, people=people, siak_options={"fail_5xx": 1.0}))
    assert counted(routed_hub) == truth(routed_hub)  # dead, verify_failed, pending, verifying

    flow = Flow(routed_hub.routes, routed_hub.schemas, routed_hub.protector, routed_hub.messages)
    with routed_hub.engine.begin() as conn:
        ops.replay(conn, flow, None, actor="admin")
    assert counted(routed_hub) == truth(routed_hub)
    dispatch(routed_hub, Sandbox(routed_hub.routes, people=people))
    fixed = kelahiran_row(1, **{"Nama Anak": "Aisyah Putri Ramadhani"})
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [fixed], "kelahiran", "fix.csv")
    assert counted(routed_hub) == truth(routed_hub)
    statuses = {key[1] for key in truth(routed_hub)}
    assert {"delivered", "verify_failed", "verifying"} <= statuses


def test_counting_takes_the_audit_head_first(hub):
    """Every status change appends to the audit chain and moves counters: both in the same
    order (the head, then the counters), so a batch being stored and a worker recording a
    delivery cannot deadlock on each other (seen under load before the order was fixed)."""
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    with hub.engine.begin() as conn:
        count_moves(conn, [Move("kelahiran", "32.73.01.1001", "2025-07-01", None, "valid")])
        with hub.engine.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '200ms'")
            with pytest.raises(sa.exc.OperationalError, match="lock"):
                other.exec_driver_sql("SELECT hash FROM audit_head WHERE id = 1 FOR UPDATE")
            other.rollback()


def test_a_batch_moves_its_counters_after_its_audit_event(hub, tmp_path):
    """The batch's counters are applied once, after the batch's audit event has taken the
    chain head, and they add up."""
    calls: list[str] = []
    original = AuditLog.record

    def record(conn, **kwargs):
        calls.append(kwargs["action"])
        return original(conn, **kwargs)

    applied = stats_module.apply_counts

    def apply(conn, deltas):
        if deltas:
            calls.append("counts")
        return applied(conn, deltas)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AuditLog, "record", staticmethod(record))
        patch.setattr("hub.pipeline.apply_counts", apply)
        ingest(
            hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(i) for i in range(1, 4)], "kelahiran"
        )
    assert calls.index("batch.ingested") < calls.index("counts")
    with hub.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.sum(record_counts.c.count))).scalar_one()
    assert total == 3


def test_new_records_tally_as_moves_from_nothing():
    new = [
        ("kelahiran", "valid", "32.73.01.1001", "2025-07-01"),
        ("kelahiran", "valid", "32.73.01.1001", "2025-07-30"),
        ("kelahiran", "valid", "32.73.01.1002", None),
        ("kematian", "valid", "32.73.01.1001", "2025-06-01"),
    ]
    deltas = Counter({("kelahiran", "valid", "32.73.01.1001", "2025-07"): 5})
    tally_new(new, deltas)
    moves = [Move(t, k, d, None, s) for t, s, k, d in new]
    assert deltas == tally(moves, Counter({("kelahiran", "valid", "32.73.01.1001", "2025-07"): 5}))
    assert deltas[("kelahiran", "valid", "32.73.01.1001", "2025-07")] == 7
    assert deltas[("kelahiran", "valid", "32.73.01.1002", "")] == 1
