"""Records along their routes: every transition, its outbox rows and its audit event."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from adapters.base import FieldVerdict, VerifyAnswer
from hub.audit import verify_chain
from hub.context import Hub
from hub.flow import Flow, idempotency_key, walk
from hub.pipeline import run_batch, source_for
from hub.routes import ApproveStep, DeliverStep, Match, Route, VerifyStep
from hub.store.tables import audit_events, outbox, records
from tests.builders import (
    KELAHIRAN_HEADER,
    PINDAH_HEADER,
    kelahiran_row,
    pindah_row,
    write_table,
)
from tests.hub.test_stats import counted, truth
from tests.routing import write_routes

MATCH_ALL = {"NAMA_LGKP": FieldVerdict(True, 100)}


def ingest(hub, tmp_path: Path, header, rows, record_type: str, name: str = "in.csv"):
    path = write_table(tmp_path / name, header, rows)
    return run_batch(hub, source_for(path), record_type, actor="operator:test")


def flow_of(hub) -> Flow:
    return Flow(hub.routes, hub.schemas, hub.protector, hub.messages)


def record_rows(hub):
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(records).order_by(records.c.id)).all()


def outbox_rows(hub, **where):
    query = sa.select(outbox).order_by(outbox.c.id)
    for name, value in where.items():
        query = query.where(outbox.c[name] == value)
    with hub.engine.connect() as conn:
        return conn.execute(query).all()


def answer_all(hub, message, code: str = "00", verdicts=None) -> str:
    """Answer a verification message: every subject of its step gets the same answer."""
    flow = flow_of(hub)
    with hub.engine.begin() as conn:
        row = conn.execute(sa.select(records).where(records.c.id == message.record_id)).one()
        step = hub.routes.route(row.route).steps[message.step]
        answer = VerifyAnswer(code, verdicts if verdicts is not None else MATCH_ALL)
        answers = [(subject, answer) for subject in step.subjects]
        return flow.verified(conn, message, answers, actor="connector:dukcapil")


def test_walk_stops_where_a_step_waits():
    route = Route(
        "r",
        Match("kelahiran"),
        (
            VerifyStep("dukcapil", ()),
            ApproveStep("auto"),
            DeliverStep("siak"),
            DeliverStep("other"),
        ),
    )
    assert walk(route, 0, flagged=False).status == "verifying"
    passed = walk(route, 1, flagged=False)
    assert (passed.status, passed.step, passed.auto_approved) == ("queued", 2, True)
    assert [m[1] for m in passed.messages] == ["siak", "other"]
    assert walk(route, 1, flagged=True).status == "pending_approval"
    assert walk(route, 4, flagged=False).status == "delivered"


def test_ingest_puts_valid_records_on_their_routes_in_the_same_transaction(routed_hub, tmp_path):
    rows = [kelahiran_row(1), kelahiran_row(2), kelahiran_row(3, **{"Tgl Lahir": "31/02/2025"})]
    report = ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, rows, "kelahiran")
    assert (report.counts.valid, report.counts.invalid) == (2, 1)
    assert report.routed == {"verifying": 2}
    stored = record_rows(routed_hub)
    assert [(r.status, r.route, r.step) for r in stored] == [("verifying", "kelahiran", 0)] * 2
    messages = outbox_rows(routed_hub)
    assert [(m.kind, m.connector, m.status, m.step) for m in messages] == [
        ("verify", "dukcapil", "queued", 0)
    ] * 2
    assert {m.record_id for m in messages} == {r.id for r in stored}
    with routed_hub.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_events.c.action)).scalars().all()
        assert actions == ["batch.ingested", "batch.routed"]
        assert verify_chain(conn).ok


def test_without_routes_records_stay_valid(hub, tmp_path):
    report = ingest(hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    assert report.routed == {}
    assert [r.status for r in record_rows(hub)] == ["valid"]
    assert outbox_rows(hub) == []


def test_every_check_passed_auto_approves_and_queues_the_delivery(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    (message,) = outbox_rows(routed_hub, kind="verify")
    assert answer_all(routed_hub, message) == "queued"
    (record,) = record_rows(routed_hub)
    assert (record.status, record.flags, record.reason) == ("queued", None, None)
    (delivery,) = outbox_rows(routed_hub, kind="deliver")
    assert (delivery.connector, delivery.correction, delivery.group_key) == ("siak", False, None)
    assert delivery.idempotency_key == idempotency_key(
        "kelahiran", 1, record.natural_key, 1, "siak", "deliver"
    )
    with routed_hub.engine.connect() as conn:
        event = conn.execute(
            sa.select(audit_events).where(audit_events.c.action == "record.verified")
        ).one()
    details = orjson.loads(event.details)
    assert details["auto_approved"] is True
    assert details["status"] == "queued"


def test_an_answer_for_a_record_that_moved_on_changes_nothing(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    (message,) = outbox_rows(routed_hub, kind="verify")
    assert answer_all(routed_hub, message) == "queued"
    assert answer_all(routed_hub, message) == "stale"
    assert len(outbox_rows(routed_hub, kind="deliver")) == 1


def test_a_flag_makes_the_record_wait_for_the_kecamatan(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    (message,) = outbox_rows(routed_hub, kind="verify")
    assert answer_all(routed_hub, message, code="11", verdicts={}) == "pending_approval"
    (record,) = record_rows(routed_hub)
    assert orjson.loads(record.flags) == ["nik_ibu:11", "nik_ayah:11"]
    assert outbox_rows(routed_hub, kind="deliver") == []

    flow = flow_of(routed_hub)
    with routed_hub.engine.begin() as conn:
        decision = flow.approve(conn, [record.id, 999], actor="verifikator:32.73.01")
    assert decision.done == [record.id]
    assert decision.skipped == {999: "not found"}
    (record,) = record_rows(routed_hub)
    assert record.status == "queued"
    assert len(outbox_rows(routed_hub, kind="deliver")) == 1
    with routed_hub.engine.connect() as conn:
        approved = conn.execute(
            sa.select(audit_events).where(audit_events.c.action == "record.approved")
        ).one()
    assert (approved.actor, approved.entity_id) == ("verifikator:32.73.01", str(record.id))


def test_mismatched_elements_flag_with_the_field_names(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    (message,) = outbox_rows(routed_hub, kind="verify")
    verdicts = {"NAMA_LGKP": FieldVerdict(False, 41)}
    assert answer_all(routed_hub, message, verdicts=verdicts) == "pending_approval"
    (record,) = record_rows(routed_hub)
    assert "nik_ibu:00" in orjson.loads(record.flags)


@pytest.mark.parametrize("code", ["13", "15", "08"])
def test_nik_not_found_goes_back_to_the_operator_in_indonesian(routed_hub, tmp_path, code):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    (message,) = outbox_rows(routed_hub, kind="verify")
    assert answer_all(routed_hub, message, code=code, verdicts={}) == "verify_failed"
    (record,) = record_rows(routed_hub)
    assert record.status == "verify_failed"
    assert f"(kode {code})" in record.reason
    assert "NIK ibu" in record.reason
    assert "3273014507900001" not in record.reason
    assert outbox_rows(routed_hub, kind="deliver") == []


def test_reject_needs_a_reason_and_only_touches_waiting_records(routed_hub, tmp_path):
    rows = [
        pindah_row("3273011505900005"),
        pindah_row("3273015208920003", **{"Nama Lengkap": "Dewi Lestari", "SHDK": "Istri"}),
    ]
    ingest(routed_hub, tmp_path, PINDAH_HEADER, rows, "pindah")
    first, second = outbox_rows(routed_hub, kind="verify")
    assert answer_all(routed_hub, first) == "pending_approval"  # pindah: by kecamatan
    flow = flow_of(routed_hub)
    with routed_hub.engine.begin() as conn, pytest.raises(ValueError, match="reason"):
        flow.reject(conn, [first.record_id], actor="verifikator", reason="  ")
    with routed_hub.engine.begin() as conn:
        decision = flow.reject(
            conn, [first.record_id, second.record_id], actor="verifikator", reason="KK salah"
        )
    assert decision.done == [first.record_id]
    assert decision.skipped == {second.record_id: "status is verifying"}
    statuses = {r.id: (r.status, r.reason) for r in record_rows(routed_hub)}
    assert statuses[first.record_id] == ("rejected", "KK salah")


def test_a_family_move_shares_one_group_key(routed_hub, tmp_path):
    rows = [
        pindah_row("3273011505900005"),
        pindah_row("3273015208920003", **{"Nama Lengkap": "Dewi Lestari", "SHDK": "Istri"}),
        pindah_row("3273011010600026", **{"No. KK": "3273010707130027"}),
    ]
    ingest(routed_hub, tmp_path, PINDAH_HEADER, rows, "pindah")
    for message in outbox_rows(routed_hub, kind="verify"):
        answer_all(routed_hub, message)
    flow = flow_of(routed_hub)
    with routed_hub.engine.begin() as conn:
        flow.approve(conn, [r.id for r in record_rows(routed_hub)], actor="verifikator")
    deliveries = outbox_rows(routed_hub, kind="deliver")
    assert len(deliveries) == 3
    assert deliveries[0].group_key == deliveries[1].group_key != deliveries[2].group_key
    assert None not in {d.group_key for d in deliveries}


def test_a_correction_of_a_delivered_record_is_delivered_again(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    (message,) = outbox_rows(routed_hub, kind="verify")
    answer_all(routed_hub, message)
    (delivery,) = outbox_rows(routed_hub, kind="deliver")
    with routed_hub.engine.begin() as conn:
        conn.execute(outbox.update().where(outbox.c.id == delivery.id).values(status="done"))
        flow_of(routed_hub).delivery_settled(conn, [delivery.record_id])
    assert record_rows(routed_hub)[0].status == "delivered"

    fixed = kelahiran_row(1, **{"Nama Anak": "Aisyah Putri Ramadhani"})
    report = ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [fixed], "kelahiran", "fix.csv")
    assert report.corrected == 1
    (record,) = record_rows(routed_hub)
    assert (record.version, record.status) == (2, "verifying")
    second = outbox_rows(routed_hub, kind="verify")[-1]
    assert second.record_version == 2
    answer_all(routed_hub, second)
    old, new = outbox_rows(routed_hub, kind="deliver")
    assert (old.status, old.record_version) == ("done", 1)
    assert (new.status, new.record_version, new.correction) == ("queued", 2, True)
    assert new.idempotency_key != old.idempotency_key


def test_a_new_version_supersedes_a_delivery_not_yet_sent(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    (message,) = outbox_rows(routed_hub, kind="verify")
    answer_all(routed_hub, message)
    fixed = kelahiran_row(1, **{"Nama Anak": "Aisyah Putri Ramadhani"})
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [fixed], "kelahiran", "fix.csv")
    answer_all(routed_hub, outbox_rows(routed_hub, kind="verify")[-1])
    old, new = outbox_rows(routed_hub, kind="deliver")
    assert old.status == "superseded"
    assert (new.status, new.correction) == ("queued", False)


def test_a_batch_stores_new_records_on_their_routes_and_routes_the_rest_after(
    settings, tmp_path, monkeypatch
):
    """New records enter their routes as the writer stores them (no read-back, no update);
    a correction and a record no route takes are left `valid` for `Flow.start_batch`. The
    end state is the one routing every record after the batch gave."""

    def first_children_only(document):
        for route in document["routes"]:
            if route["name"] == "kelahiran":
                route["match"]["where"] = {"kelahiran_ke": [1]}

    path = write_routes(tmp_path / "routes.yaml", monkeypatch, first_children_only)
    hub = Hub.open(dataclasses.replace(settings, routes_path=path))
    try:
        ingest(hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran", "first.csv")
        rows = [
            kelahiran_row(1, **{"Nama Anak": "Aisyah Putri Ramadhani"}),  # a correction
            kelahiran_row(2),
            kelahiran_row(3, **{"Anak Ke": "2"}),  # no route takes a second child here
            kelahiran_row(4, **{"Tgl Lahir": "31/02/2025"}),  # invalid
        ]
        report = ingest(hub, tmp_path, KELAHIRAN_HEADER, rows, "kelahiran", "second.csv")

        assert (report.counts.valid, report.counts.invalid, report.corrected) == (3, 1, 1)
        assert report.routed == {"verifying": 2, "unrouted": 1}
        stored = record_rows(hub)
        assert [(r.version, r.status, r.route, r.step) for r in stored] == [
            (2, "verifying", "kelahiran", 0),
            (1, "verifying", "kelahiran", 0),
            (1, "valid", None, None),
        ]
        messages = outbox_rows(hub)
        assert [(m.record_id, m.record_version, m.kind, m.status) for m in messages] == [
            (stored[0].id, 1, "verify", "superseded"),  # by the correction
            (stored[1].id, 1, "verify", "queued"),
            (stored[0].id, 2, "verify", "queued"),
        ]
        for message in messages:
            record = next(r for r in stored if r.id == message.record_id)
            assert message.idempotency_key == idempotency_key(
                "kelahiran", 1, record.natural_key, message.record_version, "dukcapil", "verify"
            )
            assert (message.connector, message.step, message.correction) == ("dukcapil", 0, False)
        assert counted(hub) == truth(hub)
        with hub.engine.connect() as conn:
            routed = conn.execute(
                sa.select(audit_events.c.details).where(audit_events.c.action == "batch.routed")
            ).scalars()
            assert [orjson.loads(details) for details in routed] == [
                {"records": 1, "verifying": 1},
                {"records": 3, "verifying": 2, "unrouted": 1},
            ]
            assert verify_chain(conn).ok
    finally:
        hub.close()
