"""The statistics read model always equals counting the records themselves."""

from __future__ import annotations

import sqlalchemy as sa

from hub import outbox as ops
from hub.flow import Flow
from hub.stats import month_of
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
