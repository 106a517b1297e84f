"""The dispatcher against both sandboxes in process: verification, delivery, retries,
dead letters, fatal stops, quotas, hours, families and field minimisation."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from hub import outbox as ops
from hub.audit import utc_timestamp, verify_chain
from hub.context import Hub
from hub.dispatcher import Dispatcher, backoff
from hub.flow import Flow
from hub.limits import next_reset
from hub.pipeline import run_batch, source_for
from hub.routes import RetryPolicy
from hub.store.tables import audit_events, connector_state, outbox, records
from tests.builders import (
    KELAHIRAN_HEADER,
    PINDAH_HEADER,
    kelahiran_row,
    pindah_row,
    write_table,
)
from tests.routing import write_routes
from tests.sandbox import FATHER, Sandbox, mother, mover

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def ingest(hub: Hub, tmp_path: Path, header, rows, record_type: str, name: str = "in.csv"):
    path = write_table(tmp_path / name, header, rows)
    return run_batch(hub, source_for(path), record_type, actor="operator:test")


def dispatch(hub: Hub, sandbox: Sandbox, **kwargs: Any) -> Dispatcher:
    async def main() -> Dispatcher:
        connectors = sandbox.connectors()
        dispatcher = Dispatcher(
            hub, hub.routes, connectors=connectors, poll_interval=0.05, **kwargs
        )
        try:
            await asyncio.wait_for(dispatcher.run(until_idle=True), timeout=60)
        finally:
            for connector in connectors.values():
                await connector.aclose()
        return dispatcher

    return asyncio.run(main())


def statuses(hub: Hub) -> list[str]:
    with hub.engine.connect() as conn:
        return list(conn.execute(sa.select(records.c.status).order_by(records.c.id)).scalars())


def audit_actions(hub: Hub) -> list[str]:
    with hub.engine.connect() as conn:
        return list(conn.execute(sa.select(audit_events.c.action)).scalars())


def hub_with(settings, tmp_path, monkeypatch, change) -> Hub:
    path = write_routes(tmp_path / "custom-routes.yaml", monkeypatch, change)
    return Hub.open(dataclasses.replace(settings, routes_path=path))


def births(n: int, **changes: Any) -> list[list[Any]]:
    return [kelahiran_row(i, **changes) for i in range(1, n + 1)]


def test_backoff_grows_and_stays_under_the_maximum():
    policy = RetryPolicy(max_attempts=8, initial=1.0, maximum=30.0, jitter=0.5)
    waits = [backoff(policy, attempt) for attempt in range(1, 9)]
    assert 1.0 <= waits[0] <= 1.5
    assert 4.0 <= waits[2] <= 4.5
    assert all(w <= 30.0 for w in waits)


def test_verified_records_are_delivered_once_and_every_attempt_is_audited(routed_hub, tmp_path):
    rows = births(3)
    rows.append(kelahiran_row(4))  # her mother is unknown to Dukcapil: code 13
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, rows, "kelahiran")
    sandbox = Sandbox(routed_hub.routes, people=[mother(1), mother(2), mother(3), FATHER])
    dispatcher = dispatch(routed_hub, sandbox)

    assert statuses(routed_hub) == ["delivered"] * 3 + ["verify_failed"]
    siak = sandbox.siak_stats()
    assert (siak["effects"], siak["identities_applied_more_than_once"]) == (3, 0)
    assert siak["effects_by_event"] == {"CAPIL_LAHIR": 3}
    # the father is the same man in every row: asked once, then answered from the cache;
    # after the unknown mother nobody spends quota on the father of row 4
    dukcapil = sandbox.dukcapil_stats()
    assert dukcapil["asked_more_than_once"] == 0
    assert (dukcapil["niks_asked"], dukcapil["requests"]) == (5, 5)
    assert dispatcher.stats.counts["cache_hit"] == 2
    actions = audit_actions(routed_hub)
    assert actions.count("outbox.verify.ok") == 4
    assert actions.count("outbox.deliver.ok") == 3
    with routed_hub.engine.connect() as conn:
        assert verify_chain(conn).ok
        details = [
            orjson.loads(d)
            for d in conn.execute(
                sa.select(audit_events.c.details).where(
                    audit_events.c.action == "outbox.deliver.ok"
                )
            ).scalars()
        ]
        rows_left = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status != "done")
        ).scalar_one()
    assert rows_left == 0
    assert {d["status"] for d in details} == {201}
    assert all(d["latency_ms"] >= 0 for d in details)
    # nothing but the allowed fields, and no NIK in the audit trail
    assert "3273014507900001" not in str(audit_actions(routed_hub)) + str(details)


def test_a_nik_is_asked_once_even_for_twins_in_one_batch(routed_hub, tmp_path):
    twins = [kelahiran_row(1), kelahiran_row(1, **{"Anak Ke": "2", "Nama Anak": "Aisyah Dua"})]
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, twins, "kelahiran")
    sandbox = Sandbox(routed_hub.routes, people=[mother(1), FATHER])
    dispatch(routed_hub, sandbox)
    assert statuses(routed_hub) == ["delivered", "delivered"]
    assert sandbox.dukcapil_stats()["asked_more_than_once"] == 0
    assert sandbox.dukcapil_stats()["requests"] == 2  # mother and father, once each


def test_server_errors_are_retried_until_delivered(settings, tmp_path, monkeypatch):
    def change(doc: dict[str, Any]) -> None:
        doc["connectors"]["siak"]["retry"] = {
            "max_attempts": 30, "initial": 0.01, "maximum": 0.02, "jitter": 0.01
        }  # fmt: skip

    hub = hub_with(settings, tmp_path, monkeypatch, change)
    try:
        people = [mother(i) for i in range(1, 21)] + [FATHER]
        ingest(hub, tmp_path, KELAHIRAN_HEADER, births(20), "kelahiran")
        sandbox = Sandbox(hub.routes, people=people, siak_options={"fail_5xx": 0.5, "seed": 7})
        dispatcher = dispatch(hub, sandbox)
        assert statuses(hub) == ["delivered"] * 20
        siak = sandbox.siak_stats()
        assert siak["effects"] == 20
        assert siak["identities_applied_more_than_once"] == 0
        assert dispatcher.stats.counts["retry"] > 0
        assert audit_actions(hub).count("outbox.deliver.retry") == dispatcher.stats.counts["retry"]
    finally:
        hub.close()


def test_after_the_last_retry_a_message_is_dead_and_can_be_replayed(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, births(2), "kelahiran")
    people = [mother(1), mother(2), FATHER]
    broken = Sandbox(routed_hub.routes, people=people, siak_options={"fail_5xx": 1.0})
    dispatch(routed_hub, broken)
    assert statuses(routed_hub) == ["dead", "dead"]
    with routed_hub.engine.connect() as conn:
        letters = ops.dead_letters(conn)
    assert [(d.connector, d.kind, d.attempts, d.code) for d in letters] == [
        ("siak", "deliver", 4, "503")
    ] * 2
    assert broken.siak_stats()["effects"] == 0

    flow = Flow(routed_hub.routes, routed_hub.schemas, routed_hub.protector, routed_hub.messages)
    with routed_hub.engine.begin() as conn:
        result = ops.replay(conn, flow, [letters[0].id, 12345], actor="admin")
    assert result.replayed == [letters[0].id]
    assert result.skipped == {12345: "not a dead letter"}
    assert sorted(statuses(routed_hub)) == ["dead", "queued"]
    with routed_hub.engine.begin() as conn:
        assert ops.replay(conn, flow, None, actor="admin").replayed == [letters[1].id]

    healthy = Sandbox(routed_hub.routes, people=people)
    dispatch(routed_hub, healthy)
    assert statuses(routed_hub) == ["delivered", "delivered"]
    assert healthy.siak_stats()["effects"] == 2
    assert audit_actions(routed_hub).count("outbox.replayed") == 2


def test_a_refused_event_is_dead_at_once_with_the_reasons(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, births(1), "kelahiran")

    def refuse(doc: dict[str, Any]) -> None:
        pass

    sandbox = Sandbox(routed_hub.routes, people=[mother(1), FATHER])
    original = sandbox.siak_app.state.simulator._apply

    def refuse_all(key: str, body: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"errors": ["NO_KK wajib diisi"]}, status_code=422)

    sandbox.siak_app.state.simulator._apply = refuse_all
    dispatch(routed_hub, sandbox)
    sandbox.siak_app.state.simulator._apply = original
    assert statuses(routed_hub) == ["dead"]
    with routed_hub.engine.connect() as conn:
        (letter,) = ops.dead_letters(conn)
    assert (letter.attempts, letter.code) == (1, "422")
    assert "NO_KK" in (letter.error or "")
    assert "outbox.deliver.rejected" in audit_actions(routed_hub)


def test_a_login_failure_stops_the_connector_and_loses_nothing(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, births(3), "kelahiran")
    people = [mother(1), mother(2), mother(3), FATHER]
    wrong = Sandbox(routed_hub.routes, people=people, dukcapil_options={"password": "other"})
    dispatch(routed_hub, wrong)
    assert statuses(routed_hub) == ["verifying"] * 3
    with routed_hub.engine.connect() as conn:
        state = conn.execute(sa.select(connector_state)).all()
        messages = conn.execute(sa.select(outbox)).all()
        (status,) = [s for s in ops.status(conn) if s.connector == "dukcapil"]
    assert {(s.connector, s.state) for s in state} >= {("dukcapil", "stopped")}
    assert "03" in (status.reason or "")
    assert {(m.status, m.attempts) for m in messages} == {("queued", 0)}
    assert "connector.stopped" in audit_actions(routed_hub)
    assert wrong.dukcapil_stats()["requests"] <= 4  # stopped at once, not hammered

    with routed_hub.engine.begin() as conn:
        assert ops.resume(conn, "dukcapil", actor="admin")
        assert not ops.resume(conn, "dukcapil", actor="admin")
    right = Sandbox(routed_hub.routes, people=people)
    dispatch(routed_hub, right)
    assert statuses(routed_hub) == ["delivered"] * 3


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


def test_quota_100_with_150_niks_asks_100_then_resumes_after_the_reset(
    settings, tmp_path, monkeypatch
):
    def change(doc: dict[str, Any]) -> None:
        doc["connectors"]["dukcapil"]["daily_quota"] = {"limit": 100, "resets_at": "00:00"}

    hub = hub_with(settings, tmp_path, monkeypatch, change)
    try:
        rows = births(150, **{"NIK Ayah": "", "Nama Ayah": ""})
        ingest(hub, tmp_path, KELAHIRAN_HEADER, rows, "kelahiran")
        people = [mother(i) for i in range(1, 151)]
        sandbox = Sandbox(hub.routes, people=people, dukcapil_options={"daily_quota": 100})
        clock = Clock(dt.datetime.now(dt.UTC))
        midnight = next_reset(clock.moment, dt.time(0), "Asia/Jakarta")
        dispatch(hub, sandbox, now=clock)
        assert sandbox.dukcapil_stats()["requests"] == 100
        assert statuses(hub).count("delivered") == 100
        assert statuses(hub).count("verifying") == 50
        with hub.engine.connect() as conn:
            (status,) = [s for s in ops.status(conn) if s.connector == "dukcapil"]
            waiting = conn.execute(
                sa.select(outbox.c.attempts, outbox.c.next_attempt_at).where(
                    outbox.c.status == "queued"
                )
            ).all()
        assert (status.state, status.quota_left, status.queued) == ("paused", 0, 50)
        assert status.paused_until == utc_timestamp(midnight)
        assert {w.attempts for w in waiting} == {0}
        assert max(w.next_attempt_at for w in waiting) == utc_timestamp(midnight)

        clock.moment = midnight + dt.timedelta(seconds=1)  # the next day: a new quota
        later = Sandbox(hub.routes, people=people)
        dispatch(hub, later, now=clock)
        assert later.dukcapil_stats()["requests"] == 50
        assert statuses(hub) == ["delivered"] * 150
    finally:
        hub.close()


def test_remote_code_05_pauses_until_the_reset_without_losing_anything(routed_hub, tmp_path):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, births(5, **{"NIK Ayah": ""}), "kelahiran")
    people = [mother(i) for i in range(1, 6)]
    sandbox = Sandbox(routed_hub.routes, people=people, dukcapil_options={"daily_quota": 2})
    dispatch(routed_hub, sandbox)
    assert statuses(routed_hub).count("delivered") == 2
    assert statuses(routed_hub).count("verifying") == 3
    with routed_hub.engine.connect() as conn:
        attempts = set(
            conn.execute(sa.select(outbox.c.attempts).where(outbox.c.status == "queued")).scalars()
        )
        (status,) = [s for s in ops.status(conn) if s.connector == "dukcapil"]
    assert attempts == {0}
    assert status.state == "paused"


def test_outside_allowed_hours_nothing_is_asked(settings, tmp_path, monkeypatch):
    def change(doc: dict[str, Any]) -> None:
        doc["connectors"]["dukcapil"]["allowed_hours"] = {"from": "06:00", "to": "22:00"}

    hub = hub_with(settings, tmp_path, monkeypatch, change)
    try:
        ingest(hub, tmp_path, KELAHIRAN_HEADER, births(2), "kelahiran")
        sandbox = Sandbox(hub.routes, people=[mother(1), mother(2), FATHER])
        wib = dt.timezone(dt.timedelta(hours=7))
        tomorrow = dt.datetime.now(wib).date() + dt.timedelta(days=1)
        night = Clock(dt.datetime.combine(tomorrow, dt.time(23, 0), wib))
        dispatch(hub, sandbox, now=night)
        assert sandbox.dukcapil_stats()["requests"] == 0
        assert statuses(hub) == ["verifying", "verifying"]
        with hub.engine.connect() as conn:
            due = set(
                conn.execute(sa.select(outbox.c.next_attempt_at).where(outbox.c.kind == "verify"))
                .scalars()
                .all()
            )
        opening = dt.datetime.combine(tomorrow + dt.timedelta(days=1), dt.time(6, 0), wib)
        assert due == {utc_timestamp(opening)}
    finally:
        hub.close()


def test_a_family_move_is_one_event_with_only_the_allowed_fields(settings, tmp_path, monkeypatch):
    def change(doc: dict[str, Any]) -> None:
        for route in doc["routes"]:
            if route["name"] == "pindah":
                route["steps"][-1]["deliver"]["fields"] = [
                    "nik", "nama_lengkap", "no_kk", "shdk", "kode_wilayah_asal",
                    "kode_wilayah_tujuan", "alasan_pindah", "klasifikasi_pindah",
                    "tanggal_pindah", "nik_pelapor", "nama_pelapor", "tanggal_lapor",
                ]  # fmt: skip

    hub = hub_with(settings, tmp_path, monkeypatch, change)
    try:
        rows = [
            pindah_row("3273011505900005"),
            pindah_row("3273015208920003", **{"Nama Lengkap": "Dewi Lestari", "SHDK": "Istri"}),
        ]
        ingest(hub, tmp_path, PINDAH_HEADER, rows, "pindah")
        people = [
            mover("3273011505900005", "Agus Salim"),
            mover("3273015208920003", "Dewi Lestari"),
        ]
        sandbox = Sandbox(hub.routes, people=people)
        dispatch(hub, sandbox)
        assert statuses(hub) == ["pending_approval"] * 2
        flow = Flow(hub.routes, hub.schemas, hub.protector, hub.messages)
        with hub.engine.begin() as conn:
            flow.approve(conn, [1, 2], actor="verifikator:32.73.01")
        dispatch(hub, sandbox)
        assert statuses(hub) == ["delivered"] * 2
        siak = sandbox.siak_stats()
        assert (siak["accepted"], siak["effects"], siak["identities"]) == (1, 1, 2)
        (body,) = sandbox.siak_wire.bodies
        assert body["EVENT"] == "PINDAH"
        assert len(body["DETAIL"]) == 2
        sent = set(body["HEADER"]) | {k for row in body["DETAIL"] for k in row}
        assert "ALAMAT_ASAL" not in sent
        assert "NO_RT_ASAL" not in sent
        # the Dukcapil connector only ever saw what verification needs
        asked = {k for b in sandbox.dukcapil_wire.bodies for k in b}
        assert asked <= {"NIK", "NAMA_LGKP", "NO_KK", "USER_ID", "PASSWORD", "IP_USER", "TRESHOLD"}
    finally:
        hub.close()


# Every RESPONSE_CODE of the Dukcapil table, end to end: what happens to the record and to
# the connector. (record status, connector state, outbox status, attempts counted)
CODE_OUTCOMES = {
    "03": ("verifying", "stopped", "queued", 0),
    "04": ("verifying", "stopped", "queued", 0),
    "05": ("verifying", "paused", "queued", 0),
    "06": ("verifying", "paused", "queued", 0),
    "07": ("dead", "running", "dead", 1),
    "08": ("verify_failed", "running", "done", 1),
    "09": ("verifying", "stopped", "queued", 0),
    "10": ("verifying", "stopped", "queued", 0),
    "11": ("pending_approval", "running", "done", 1),
    "12": ("pending_approval", "running", "done", 1),
    "13": ("verify_failed", "running", "done", 1),
    "14": ("pending_approval", "running", "done", 1),
    "15": ("verify_failed", "running", "done", 1),
    "16": ("verifying", "stopped", "queued", 0),
    "17": ("verifying", "stopped", "queued", 0),
}


@pytest.mark.parametrize("code", sorted(CODE_OUTCOMES))
def test_each_dukcapil_response_code(settings, tmp_path, monkeypatch, code):
    import httpx2

    from adapters.dukcapil.client import DukcapilVerifier
    from adapters.dukcapil.wire import make_page

    hub = hub_with(settings, tmp_path, monkeypatch, None)
    try:
        ingest(hub, tmp_path, KELAHIRAN_HEADER, births(1, **{"NIK Ayah": ""}), "kelahiran")

        def answer(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, json=make_page({"RESPON": "x", "RESPONSE_CODE": code}, 9))

        sandbox = Sandbox(hub.routes)
        connectors = sandbox.connectors()
        config = hub.routes.connectors["dukcapil"].as_adapter_config()
        connectors["dukcapil"] = DukcapilVerifier(config, transport=httpx2.MockTransport(answer))

        async def main() -> None:
            dispatcher = Dispatcher(hub, hub.routes, connectors=connectors, poll_interval=0.05)
            await asyncio.wait_for(dispatcher.run(until_idle=True), timeout=30)
            for connector in connectors.values():
                await connector.aclose()

        asyncio.run(main())
        with hub.engine.connect() as conn:
            message = conn.execute(sa.select(outbox).where(outbox.c.kind == "verify")).one()
            (state,) = [s for s in ops.status(conn) if s.connector == "dukcapil"]
        expected = CODE_OUTCOMES[code]
        assert (statuses(hub)[0], state.state, message.status, message.attempts) == expected
        if expected[0] == "verify_failed":
            assert f"(kode {code})" in _reason(hub)
    finally:
        hub.close()


def _reason(hub: Hub) -> str:
    with hub.engine.connect() as conn:
        return str(conn.execute(sa.select(records.c.reason)).scalar_one())


def test_an_attempt_that_outlived_its_lease_records_nothing(routed_hub, tmp_path):
    """The same worker claimed the message again after the lease ran out: the first,
    late attempt must not record an outcome over the second claim's."""
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, births(1), "kelahiran")
    dispatcher = Dispatcher(routed_hub, routed_hub.routes, connectors={}, worker_id="w1")
    lane = SimpleNamespace(name="dukcapil", config=routed_hub.routes.connectors["dukcapil"])
    first = dispatcher._claim(lane, 10)[0]
    with routed_hub.engine.begin() as conn:  # the lease runs out; the same worker claims again
        conn.execute(outbox.update().values(lease_until="2000-01-01T00:00:00.000000Z"))
    second = dispatcher._claim(lane, 10)[0]
    assert [m.id for m in first] == [m.id for m in second]
    with routed_hub.engine.begin() as conn:
        assert not dispatcher._still_ours(conn, first)
        assert dispatcher._still_ours(conn, second)
    dispatcher._put_back(first, dt.datetime(2030, 1, 1, tzinfo=dt.UTC), "late")
    with routed_hub.engine.connect() as conn:  # the late attempt put nothing back
        assert conn.execute(sa.select(outbox.c.status)).scalars().all() == ["in_flight"]
