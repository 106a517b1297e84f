"""Deliveries, dead letters and their replay, the audit trail and its check, over the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from hub.api.openapi import encode_cursor
from hub.context import Hub
from hub.store.tables import audit_events, outbox, records
from tests.builders import KELAHIRAN_HEADER, kelahiran_row
from tests.hub.test_dispatcher import births, dispatch, ingest
from tests.sandbox import FATHER, Sandbox, mother

SUKARASA, GEGERKALONG, CIPAGANTI = "32.73.01.1001", "32.73.01.1002", "32.73.02.1001"


def populate(hub: Hub, tmp_path: Path) -> None:
    """Six births in three kelurahan: all verified, then SIAK fails every delivery, so each
    record but one (verify_failed) ends dead with one dead letter."""
    rows = [
        *births(3),
        kelahiran_row(4),
        kelahiran_row(5, **{"Kode Desa": GEGERKALONG, "Tgl Lahir": "03/06/2025",
                            "Tgl Lapor": "04/06/2025"}),
        kelahiran_row(6, **{"Kode Desa": CIPAGANTI}),
    ]  # fmt: skip
    ingest(hub, tmp_path, KELAHIRAN_HEADER, rows, "kelahiran")
    people = [mother(1), mother(2), mother(3), FATHER,
              mother(5, kode_wilayah=GEGERKALONG), mother(6, kode_wilayah=CIPAGANTI)]  # fmt: skip
    dispatch(hub, Sandbox(hub.routes, people=people, siak_options={"fail_5xx": 1.0}))


@pytest.fixture
def populated(routed_hub: Hub, tmp_path: Path) -> Hub:
    populate(routed_hub, tmp_path)
    return routed_hub


def outbox_rows(hub: Hub) -> list[Any]:
    with hub.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(outbox.c.id, outbox.c.status, outbox.c.connector, records.c.kode_wilayah)
                .join(records, records.c.id == outbox.c.record_id)
                .order_by(outbox.c.id.desc())
            )
        )


def denials(hub: Hub) -> list[dict[str, Any]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events)
            .where(audit_events.c.action == "access.denied")
            .order_by(audit_events.c.id)
        ).all()
    return [{"entity": r.entity_id, "actor": r.actor, **orjson.loads(r.details)} for r in rows]


def walk(client: TestClient, url: str, headers: dict[str, str], **params: Any) -> list[Any]:
    """Every item of a paginated list, page by page."""
    items: list[Any] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get(url, params=query, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


# ------------------------------------------------------------------ deliveries


def test_deliveries_newest_first_paged_without_gaps_or_repeats(populated, client, auth):
    admin = auth("admin", "")
    expected = [row.id for row in outbox_rows(populated)]
    everything = client.get("/api/v1/deliveries", headers=admin).json()
    assert [item["id"] for item in everything["items"]] == expected
    assert everything["next_cursor"] is None
    paged = walk(client, "/api/v1/deliveries", admin, limit=4)
    assert [item["id"] for item in paged] == expected
    first = everything["items"][0]
    assert set(first) >= {"record_type", "kode_wilayah", "connector", "status", "attempts"}
    assert first["record_type"] == "kelahiran"


FILTERS: list[tuple[dict[str, str], Any]] = [
    ({"connector": "siak"}, lambda d: d["connector"] == "siak"),
    ({"status": "dead"}, lambda d: d["status"] == "dead"),
    (
        {"status": "done", "kind": "verify"},
        lambda d: (d["status"], d["kind"]) == ("done", "verify"),
    ),
    ({"kind": "deliver"}, lambda d: d["kind"] == "deliver"),
    ({"wilayah": "32.73.01"}, lambda d: d["kode_wilayah"].startswith("32.73.01.")),
    (
        {"wilayah": CIPAGANTI, "status": "dead"},
        lambda d: d["kode_wilayah"] == CIPAGANTI and d["status"] == "dead",
    ),
    ({"connector": "nobody"}, lambda d: False),
]


def test_delivery_filters(populated, client, auth):
    admin = auth("admin", "")
    every = walk(client, "/api/v1/deliveries", admin)
    for params, check in FILTERS:
        found = walk(client, "/api/v1/deliveries", admin, limit=3, **params)
        assert found == [d for d in every if check(d)], params
        assert found or params == {"connector": "nobody"}


def test_deliveries_only_of_the_callers_region(populated, client, auth):
    callers = [
        (("admin", ""), {SUKARASA, GEGERKALONG, CIPAGANTI}),
        (("admin", "32.73"), {SUKARASA, GEGERKALONG, CIPAGANTI}),
        (("admin", "32.73.01"), {SUKARASA, GEGERKALONG}),
        (("admin", GEGERKALONG), {GEGERKALONG}),
        (("system", SUKARASA, ("deliveries:read",)), {SUKARASA}),
        (("admin", "32.74"), set()),
    ]
    rows = outbox_rows(populated)
    for caller, kelurahan in callers:
        items = walk(client, "/api/v1/deliveries", auth(*caller))
        assert {item["kode_wilayah"] for item in items} == kelurahan, caller
        assert [item["id"] for item in items] == [r.id for r in rows if r.kode_wilayah in kelurahan]


def test_a_region_outside_the_callers_is_refused_and_audited(populated, client, auth):
    caller = auth("system", SUKARASA, ("deliveries:read",))
    outside = [GEGERKALONG, "32.73.01", "32.74", "32"]  # sibling, parent, other kota, provinsi
    for wilayah in outside:
        for url in ("/api/v1/deliveries", "/api/v1/deadletters"):
            answer = client.get(url, params={"wilayah": wilayah}, headers=caller)
            assert answer.status_code == 403
            assert answer.json()["error"] == {
                "code": "forbidden",
                "message": "this region is outside yours",
                "details": {"reason": "wilayah", "wilayah": wilayah},
            }
    refused = denials(populated)
    assert [d["entity"] for d in refused] == ["GET /deliveries", "GET /deadletters"] * 4
    assert [d["wilayah"] for d in refused[::2]] == outside
    assert {(d["actor"], d["reason"], d["own"]) for d in refused} == {
        ("client:test-system", "wilayah", SUKARASA)
    }


def test_people_without_delivery_scopes_are_refused_and_audited(routed_hub, client, auth):
    calls = [("GET", "/api/v1/deliveries"), ("GET", "/api/v1/deadletters"),
             ("POST", "/api/v1/deadletters/1/replay")]  # fmt: skip
    people = [("operator", SUKARASA), ("verifikator", "32.73.01"), ("auditor", "")]
    for role, wilayah in people:
        for method, url in calls:
            answer = client.request(method, url, headers=auth(role, wilayah))
            assert answer.status_code == 403, (role, url)
            assert answer.json()["error"]["details"]["reason"] == "scope"
    refused = denials(routed_hub)
    assert len(refused) == 9
    assert refused[2] == {"entity": "POST /deadletters/{id}/replay", "actor": "user:test-operator",
                          "reason": "scope", "role": "operator", "own": SUKARASA,
                          "scope": "deliveries:write"}  # fmt: skip


BAD_QUERIES: list[dict[str, str]] = [
    {"status": "lost"},
    {"kind": "both"},
    {"limit": "0"},
    {"limit": "501"},
    {"limit": "ten"},
    {"limit": "1.5"},
    {"wilayah": "32.7"},
    {"wilayah": "3273"},
    {"connector": "a b"},
    {"cursor": "%%%"},
    {"cursor": "bm90LWEtY3Vyc29y"},
    {"cursor": encode_cursor("audit", 5)},
]


def test_bad_filters_and_cursors(routed_hub, client, auth):
    for url in ("/api/v1/deliveries", "/api/v1/deadletters"):
        for query in BAD_QUERIES:
            if url.endswith("deadletters") and next(iter(query)) in ("status", "kind"):
                continue  # not parameters of the dead-letter list
            answer = client.get(url, params=query, headers=auth("admin", ""))
            assert answer.status_code == 400, (url, query)
            error = answer.json()["error"]
            assert error["code"] == "bad_request"
            assert error["details"] == {"parameter": next(iter(query))}


def test_without_a_token(routed_hub, client):
    for url in ("/api/v1/deliveries", "/api/v1/deadletters", "/api/v1/audit"):
        answer = client.get(url)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"


# ------------------------------------------------------------------ dead letters and replay


def test_dead_letters_of_the_callers_region(populated, client, auth):
    every = walk(client, "/api/v1/deadletters", auth("admin", ""), limit=2)
    dead = [row for row in outbox_rows(populated) if row.status == "dead"]
    assert [d["id"] for d in every] == [row.id for row in dead]
    assert {d["code"] for d in every} == {"503"}
    assert all(d["connector"] == "siak" and d["kind"] == "deliver" for d in every)
    mine = walk(client, "/api/v1/deadletters", auth("admin", "32.73.01"))
    assert {d["kode_wilayah"] for d in mine} == {SUKARASA, GEGERKALONG}
    assert walk(client, "/api/v1/deadletters", auth("admin", "32.74")) == []


def test_replay_queues_the_message_and_its_record_again_audited(populated, client, auth):
    letter = walk(client, "/api/v1/deadletters", auth("admin", ""), wilayah=CIPAGANTI)[0]
    caller = auth("system", "32.73.02", ("deliveries:write",))
    answer = client.post(f"/api/v1/deadletters/{letter['id']}/replay", headers=caller)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"replayed": [letter["id"]], "skipped": {}}
    with populated.engine.connect() as conn:
        message = conn.execute(sa.select(outbox).where(outbox.c.id == letter["id"])).one()
        record = conn.execute(sa.select(records).where(records.c.id == letter["record_id"])).one()
        event = conn.execute(
            sa.select(audit_events).where(audit_events.c.action == "outbox.replayed")
        ).one()
    assert (message.status, message.attempts, record.status) == ("queued", 0, "queued")
    assert (event.actor, event.entity_id) == ("client:test-system", str(letter["id"]))
    again = client.post(f"/api/v1/deadletters/{letter['id']}/replay", headers=caller)
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"id": letter["id"], "status": "queued"}


def test_replay_outside_the_callers_region_is_refused_and_audited(populated, client, auth):
    letter = walk(client, "/api/v1/deadletters", auth("admin", ""), wilayah=CIPAGANTI)[0]
    for wilayah in (SUKARASA, "32.73.01", "32.74"):
        answer = client.post(
            f"/api/v1/deadletters/{letter['id']}/replay", headers=auth("admin", wilayah)
        )
        assert answer.status_code == 403
    assert [d["wilayah"] for d in denials(populated)] == [CIPAGANTI] * 3
    assert all(row.status == "dead" for row in outbox_rows(populated) if row.id == letter["id"])


def test_replay_needs_the_write_scope(routed_hub, client, auth):
    answer = client.post("/api/v1/deadletters/7/replay",
                         headers=auth("system", "", ("deliveries:read",)))  # fmt: skip
    assert answer.status_code == 403
    assert denials(routed_hub)[0]["scope"] == "deliveries:write"


def test_replay_of_unknown_or_malformed_ids(routed_hub, client, auth):
    cases = [("999999", 404, "not_found"), ("abc", 400, "bad_request"), ("0", 400, "bad_request"),
             ("-1", 400, "bad_request"), ("99999999999999999999", 400, "bad_request")]  # fmt: skip
    for message, status, code in cases:
        answer = client.post(f"/api/v1/deadletters/{message}/replay", headers=auth("admin", ""))
        assert answer.status_code == status, message
        assert answer.json()["error"]["code"] == code


def test_replay_of_a_delivered_verification_conflicts(populated, client, auth):
    done = walk(client, "/api/v1/deliveries", auth("admin", ""), status="done")[0]
    answer = client.post(f"/api/v1/deadletters/{done['id']}/replay", headers=auth("admin", ""))
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "conflict"


# ------------------------------------------------------------------ audit


def test_audit_newest_first_paged_with_filters(populated, client, auth):
    admin = auth("admin", "")
    with populated.engine.connect() as conn:
        stored = conn.execute(sa.select(audit_events).order_by(audit_events.c.id.desc())).all()
    events = walk(client, "/api/v1/audit", admin, limit=7)
    assert [e["id"] for e in events] == [row.id for row in stored]
    assert events[-1]["action"] == "batch.ingested"
    assert events[-1]["details"]["record_type"] == "kelahiran"
    assert events[-1]["prev_hash"] == "0" * 64

    def only(**params: str) -> list[int]:
        return [e["id"] for e in walk(client, "/api/v1/audit", admin, **params)]

    assert only(action="outbox.deliver.dead") == [
        r.id for r in stored if r.action == "outbox.deliver.dead"
    ]
    assert only(entity="batch") == [r.id for r in stored if r.entity_type == "batch"]
    assert only(entity="batch:1") == [r.id for r in stored if r.entity_type == "batch"]
    assert only(entity="batch:2") == []
    assert only(actor="operator:test") == [r.id for r in stored if r.actor == "operator:test"]
    first = stored[-1].occurred_at
    assert only(**{"from": first[:10], "to": first[:10]}) == [r.id for r in stored]
    assert only(to=first) == [stored[-1].id]
    assert only(**{"from": "2999-01-01"}) == []
    assert only(to="2000-01-01T00:00:00+07:00") == []


def test_bad_audit_filters(routed_hub, client, auth):
    queries: list[dict[str, str]] = [
        {"from": "2025-13-01"},
        {"from": "yesterday"},
        {"to": "2025-02-30"},
        {"to": "2025-07-01T25:00:00Z"},
        {"from": "0001-01-01T00:00:00+01:00"},
        {"to": "2025-07-01", "from": "2025-07-02"},
        {"action": "a b"},
        {"entity": ":1"},
        {"actor": ""},
        {"cursor": encode_cursor("outbox", 3)},
        {"limit": "-1"},
    ]
    for query in queries:
        answer = client.get("/api/v1/audit", params=query, headers=auth("admin", ""))
        assert answer.status_code == 400, query
        assert answer.json()["error"]["details"] == {"parameter": next(iter(query))}


def test_audit_is_for_nasional_auditors_and_admins(routed_hub, client, auth):
    cases = [("auditor", "", 200), ("admin", "", 200), ("auditor", "32", 403),
             ("auditor", "32.73", 403), ("admin", "32.73.01", 403), ("operator", SUKARASA, 403),
             ("verifikator", "32.73.01", 403)]  # fmt: skip
    for role, wilayah, status in cases:
        answer = client.get("/api/v1/audit", headers=auth(role, wilayah))
        assert answer.status_code == status, (role, wilayah)
    reasons = [(d["role"], d["own"], d["reason"]) for d in denials(routed_hub)]
    assert reasons == [("auditor", "32", "wilayah"), ("auditor", "32.73", "wilayah"),
                       ("admin", "32.73.01", "wilayah"), ("operator", SUKARASA, "scope"),
                       ("verifikator", "32.73.01", "scope")]  # fmt: skip


def test_audit_verify(populated, client, auth):
    with populated.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one()
    answer = client.get("/api/v1/audit/verify", headers=auth("auditor", "32.73"))
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "checked": count, "first_bad_id": None, "reason": None}
    with populated.engine.begin() as conn:
        conn.execute(audit_events.update().where(audit_events.c.id == 2).values(actor="someone"))
    broken = client.get("/api/v1/audit/verify", headers=auth("auditor", "")).json()
    assert (broken["ok"], broken["first_bad_id"]) == (False, 2)
    assert client.get("/api/v1/audit/verify", headers=auth("operator")).status_code == 403
