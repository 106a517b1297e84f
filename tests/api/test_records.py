"""Records as JSON, reading them, approving them, and NIK verification through the sandbox."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hub.api import verify
from hub.api.principal import Principal
from hub.api.verify import NikVerifier
from hub.batch import utc_now
from hub.context import Hub
from hub.routes import AllowedHours, DailyQuota, RateLimit
from hub.store.tables import (
    api_idempotency,
    audit_events,
    batches,
    connector_state,
    outbox,
    records,
)
from tests.api.conftest import Headers
from tests.sandbox import FATHER, Sandbox, mother

KELURAHAN = "32.73.01.1001"
SIBLING = "32.73.01.1002"


def birth(serial: int, **changes: Any) -> dict[str, Any]:
    """A valid birth in canonical field names; `serial` makes the mother's NIK unique."""
    values: dict[str, Any] = {
        "nama_bayi": "Aisyah Putri",
        "jenis_kelamin": "P",
        "tempat_kelahiran": "Bandung",
        "tanggal_lahir": "2025-07-02",
        "jam_lahir": "08:30",
        "kelahiran_ke": 1,
        "penolong_kelahiran": "Bidan",
        "berat_bayi": 3200,
        "panjang_bayi": 49,
        "nik_ibu": f"327301450790{serial:04d}",
        "nama_ibu": "Siti Aminah",
        "nik_ayah": "3273010101880002",
        "nama_ayah": "Budi Santoso",
        "no_kk": "3273011203150004",
        "kode_wilayah": KELURAHAN,
        "rt": "003",
        "rw": "005",
        "nik_pelapor": "3273010101880002",
        "nama_pelapor": "Budi Santoso",
        "tanggal_lapor": "2025-07-05",
    }
    values.update(changes)
    return values


def count(hub: Hub, table: sa.Table, *where: Any) -> int:
    with hub.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int(conn.execute(query).scalar_one())


def denials(hub: Hub) -> list[str]:
    with hub.engine.connect() as conn:
        query = sa.select(audit_events.c.details).where(audit_events.c.action == "access.denied")
        return list(conn.execute(query).scalars())


@pytest.fixture
def operator(auth: Headers) -> dict[str, str]:
    return auth("operator", KELURAHAN)


@pytest.fixture
def verifikator(auth: Headers) -> dict[str, str]:
    return auth("verifikator", "32.73.01")


def submit(client: TestClient, headers: dict[str, str], body: Any, **extra: str) -> Any:
    return client.post("/api/v1/records/kelahiran", json=body, headers={**headers, **extra})


def stored(client: TestClient, headers: dict[str, str], *serials: int, **changes: Any) -> list[int]:
    """Submit births and return their record ids."""
    answer = submit(client, headers, [birth(s, **changes) for s in serials])
    assert answer.status_code == 200, answer.text
    return [result["record_id"] for result in answer.json()["results"]]


# ------------------------------------------------------------------ submitting


def test_one_record_goes_through_the_pipeline(
    client: TestClient, operator: dict[str, str], routed_hub: Hub
) -> None:
    answer = submit(client, operator, birth(1))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"] == {"items": 1, "valid": 1, "invalid": 0, "duplicates": 0}
    assert body["routed"] == {"verifying": 1}
    [result] = body["results"]
    assert result["outcome"] == "valid"
    assert result["status"] == "verifying"
    assert result["issues"] == []
    with routed_hub.engine.connect() as conn:
        batch = conn.execute(sa.select(batches).where(batches.c.id == body["batch_id"])).one()
        record = conn.execute(sa.select(records).where(records.c.id == result["record_id"])).one()
    assert (batch.source, batch.status, batch.kelurahan) == ("api", "done", KELURAHAN)
    assert record.row_ref == "#1"
    assert b"Siti" not in record.pii  # encrypted like any upload
    assert count(routed_hub, outbox, outbox.c.record_id == record.id) == 1  # verification queued
    status_url = f"/api/v1/batches/{body['batch_id']}"
    assert client.get(status_url, headers=operator).json()["valid"] == 1
    no_file = client.get(f"{status_url}/report.xlsx", headers=operator)
    assert no_file.status_code == 404


def test_a_list_is_answered_per_item(client: TestClient, operator: dict[str, str]) -> None:
    items = [
        birth(1),
        birth(2, nik_ibu="12345"),
        birth(1),
        {"nama_bayi": "X", "warna": "merah"},
        "not an object",
        birth(3, nama_ibu={"first": "Siti"}),
        birth(4, kode_wilayah=None),  # filled from the operator's kelurahan
    ]
    answer = submit(client, operator, items)
    assert answer.status_code == 207, answer.text
    body = answer.json()
    outcomes = [(r["index"], r["outcome"]) for r in body["results"]]
    assert outcomes == [
        (0, "valid"),
        (1, "invalid"),
        (2, "duplicate"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "invalid"),
        (6, "valid"),
    ]
    assert body["counts"] == {"items": 7, "valid": 2, "invalid": 4, "duplicates": 1}
    results = body["results"]
    assert [i["code"] for i in results[1]["issues"]] == ["nik_format"]
    assert results[1]["issues"][0]["field"] == "nik_ibu"
    assert "record_id" not in results[1]
    assert [i["code"] for i in results[2]["issues"]] == ["duplicate_in_file"]
    assert [i["code"] for i in results[3]["issues"]] == ["unknown_field"]
    assert [i["code"] for i in results[4]["issues"]] == ["not_an_object"]
    assert [i["code"] for i in results[5]["issues"]] == ["not_a_value"]
    assert isinstance(results[6]["record_id"], int)


def test_the_same_record_again_is_a_duplicate(client: TestClient, operator: dict[str, str]) -> None:
    [first] = stored(client, operator, 1)
    again = submit(client, operator, birth(1))
    assert again.status_code == 200
    [result] = again.json()["results"]
    assert result["outcome"] == "duplicate"
    assert result["issues"][0]["code"] == "duplicate"
    assert f"#{first}" in result["issues"][0]["message"]


def test_no_valid_item_is_422_with_the_results(
    client: TestClient, operator: dict[str, str]
) -> None:
    answer = submit(client, operator, [birth(1, nik_ibu="1"), birth(2, tanggal_lahir="2025-02-31")])
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_records"
    assert [r["outcome"] for r in error["details"]["results"]] == ["invalid", "invalid"]


def test_validate_is_a_dry_run(
    client: TestClient, operator: dict[str, str], routed_hub: Hub
) -> None:
    answer = client.post(
        "/api/v1/validate/kelahiran", json=[birth(1), birth(2, jenis_kelamin="X")], headers=operator
    )
    assert answer.status_code == 207, answer.text
    body = answer.json()
    assert body["dry_run"] is True
    assert body["batch_id"] is None
    assert [r["outcome"] for r in body["results"]] == ["valid", "invalid"]
    assert "record_id" not in body["results"][0]
    assert count(routed_hub, records) == count(routed_hub, batches) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "bad_request"),
        (b'{"nama_bayi": "A"}', "text/plain", 415, "unsupported_media_type"),
        (b"42", "application/json", 422, "invalid"),
        (b"[]", "application/json", 422, "invalid"),
    ],
)
def test_bad_bodies(
    client: TestClient,
    operator: dict[str, str],
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    headers = {**operator, "Content-Type": content_type}
    answer = client.post("/api/v1/records/kelahiran", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_unknown_type_is_404(client: TestClient, operator: dict[str, str]) -> None:
    answer = client.post("/api/v1/records/lahiran", json=birth(1), headers=operator)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_records_of_another_region_are_refused_and_audited(
    client: TestClient, operator: dict[str, str], routed_hub: Hub
) -> None:
    answer = submit(client, operator, [birth(1), birth(2, kode_wilayah="3273011002")])
    assert answer.status_code == 403
    assert answer.json()["error"]["details"] == {"reason": "wilayah", "wilayah": SIBLING}
    assert any(SIBLING in details for details in denials(routed_hub))
    assert count(routed_hub, records) == 0


def test_a_verifikator_cannot_submit(client: TestClient, verifikator: dict[str, str]) -> None:
    answer = submit(client, verifikator, birth(1))
    assert answer.status_code == 403
    assert answer.json()["error"]["details"]["scope"] == "records:write"


# ------------------------------------------------------------------ idempotency


def test_the_same_key_and_body_get_the_first_answer(
    client: TestClient, operator: dict[str, str], app: Starlette, routed_hub: Hub
) -> None:
    body = [birth(1), birth(2, nik_ibu="9")]
    first = submit(client, operator, body, **{"Idempotency-Key": "laporan-juli-1"})
    assert first.status_code == 207
    again = submit(client, operator, body, **{"Idempotency-Key": "laporan-juli-1"})
    assert again.status_code == 207
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count(routed_hub, batches) == 1
    with routed_hub.engine.connect() as conn:
        kept = conn.execute(sa.select(api_idempotency.c.response)).scalar_one()
    assert "Siti" not in kept
    assert "nik_format" not in kept
    other = submit(client, operator, [birth(3)], **{"Idempotency-Key": "laporan-juli-1"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_mismatch"
    # keys are per caller: another operator's key of the same name is their own
    colleague = Principal.for_role("user:colleague", "operator", KELURAHAN)
    theirs = {"Authorization": f"Bearer {app.state.tokens.issue(colleague)}"}
    fresh = submit(client, theirs, body, **{"Idempotency-Key": "laporan-juli-1"})
    assert fresh.status_code == 207
    assert "idempotent-replayed" not in fresh.headers
    assert [r["outcome"] for r in fresh.json()["results"]] == ["duplicate", "invalid"]


def test_a_bad_idempotency_key_is_400(client: TestClient, operator: dict[str, str]) -> None:
    answer = submit(client, operator, birth(1), **{"Idempotency-Key": "x" * 201})
    assert answer.status_code == 400


# ------------------------------------------------------------------ reading


def test_listing_filters_and_pages(
    client: TestClient, operator: dict[str, str], auth: Headers
) -> None:
    ids = stored(client, operator, 1, 2, 3)
    stored(client, operator, 4, tanggal_lahir="2025-06-01")
    sibling = auth("operator", SIBLING)
    [theirs] = stored(client, sibling, 5, kode_wilayah=SIBLING)
    url = "/api/v1/records"
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get(url, params=params, headers=operator).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:3] == ids
    assert len(seen) == 4
    assert theirs not in seen
    july = client.get(url, params={"from": "2025-07-01", "to": "2025-07-31"}, headers=operator)
    assert [item["id"] for item in july.json()["items"]] == ids
    item = july.json()["items"][0]
    assert item["status"] == "verifying"
    assert item["kode_wilayah"] == KELURAHAN
    assert "values" not in item  # the list holds no personal data
    by_status = client.get(
        url, params={"status": "delivered", "type": "kelahiran"}, headers=operator
    )
    assert by_status.json()["items"] == []
    kecamatan = client.get(url, headers=auth("verifikator", "32.73.01")).json()["items"]
    assert theirs in [i["id"] for i in kecamatan]
    assert len(kecamatan) == 5
    narrowed = client.get(url, params={"wilayah": "32.73"}, headers=sibling).json()["items"]
    assert [i["id"] for i in narrowed] == [theirs]  # a wider filter is narrowed to one's own
    one = client.get(url, params={"wilayah": "3273011002"}, headers=auth("admin", "")).json()
    assert [i["id"] for i in one["items"]] == [theirs]


def test_listing_another_region_is_refused(
    client: TestClient, verifikator: dict[str, str], routed_hub: Hub
) -> None:
    answer = client.get("/api/v1/records", params={"wilayah": "32.73.02"}, headers=verifikator)
    assert answer.status_code == 403
    assert any("32.73.02" in details for details in denials(routed_hub))


@pytest.mark.parametrize(
    "params",
    [
        {"type": "lahiran"},
        {"status": "lost"},
        {"wilayah": "abc"},
        {"from": "2025-13-01"},
        {"to": "kemarin"},
        {"from": "2025-08-01", "to": "2025-07-01"},
        {"limit": "501"},
        {"cursor": "xyz"},
    ],
)
def test_bad_filters_are_400(
    client: TestClient, operator: dict[str, str], params: dict[str, str]
) -> None:
    answer = client.get("/api/v1/records", params=params, headers=operator)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["parameter"] == next(iter(params))


def test_a_record_with_its_history_and_deliveries(
    client: TestClient, operator: dict[str, str]
) -> None:
    [record_id] = stored(client, operator, 1)
    corrected = submit(client, operator, birth(1, nama_bayi="Aisyah Putri Rahma"))
    assert corrected.json()["results"][0]["record_id"] == record_id
    answer = client.get(f"/api/v1/records/{record_id}", headers=operator)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["version"], body["status"], body["masked"]) == (2, "verifying", False)
    assert body["values"]["nama_bayi"] == "Aisyah Putri Rahma"
    assert body["values"]["nik_ibu"] == "3273014507900001"
    [old] = body["history"]
    assert (old["version"], old["values"]["nama_bayi"]) == (1, "Aisyah Putri")
    kinds = [
        (d["kind"], d["connector"], d["record_version"], d["status"]) for d in body["deliveries"]
    ]
    assert kinds == [("verify", "dukcapil", 1, "superseded"), ("verify", "dukcapil", 2, "queued")]
    assert body["deliveries"][1]["attempts"] == 0


def test_pii_is_masked_without_pii_read(
    client: TestClient, operator: dict[str, str], auth: Headers
) -> None:
    [record_id] = stored(client, operator, 1)
    body = client.get(f"/api/v1/records/{record_id}", headers=auth("auditor", "32.73")).json()
    values = body["values"]
    assert body["masked"] is True
    assert values["nik_ibu"] == "3273********0001"
    assert values["nama_ibu"] == "S. A."
    assert values["rt"] == "***"
    assert values["tanggal_lahir"] == "2025-07-02"  # not personal data


@pytest.mark.parametrize(
    ("role", "wilayah", "allowed"),
    [
        ("operator", KELURAHAN, True),
        ("operator", SIBLING, False),
        ("verifikator", "32.73.01", True),
        ("verifikator", "32.73.02", False),
        ("auditor", "32.74", False),
        ("operator", "32.74.01.1001", False),
    ],
)
def test_who_may_read_a_record(
    client: TestClient,
    operator: dict[str, str],
    auth: Headers,
    routed_hub: Hub,
    role: Any,
    wilayah: str,
    allowed: bool,
) -> None:
    [record_id] = stored(client, operator, 1)
    before = len(denials(routed_hub))
    answer = client.get(f"/api/v1/records/{record_id}", headers=auth(role, wilayah))
    assert answer.status_code == (200 if allowed else 403)
    assert len(denials(routed_hub)) == before + (0 if allowed else 1)


def test_unknown_record_is_404(client: TestClient, operator: dict[str, str]) -> None:
    assert client.get("/api/v1/records/999", headers=operator).status_code == 404
    assert client.get("/api/v1/records/999").status_code == 401


# ------------------------------------------------------------------ approval


def waiting(hub: Hub, *record_ids: int) -> None:
    """Put records where a verifikator decides: the approve step of the kelahiran route."""
    with hub.engine.begin() as conn:
        conn.execute(
            records.update()
            .where(records.c.id.in_(record_ids))
            .values(status="pending_approval", route="kelahiran", step=1)
        )


def test_approve_and_reject_one_record(
    client: TestClient, operator: dict[str, str], verifikator: dict[str, str], routed_hub: Hub
) -> None:
    first, second = stored(client, operator, 1, 2)
    waiting(routed_hub, first, second)
    url = "/api/v1/records/{}/{}"
    approved = client.post(
        url.format(first, "approve"), json={"note": "lengkap"}, headers=verifikator
    )
    assert approved.status_code == 200, approved.text
    assert approved.json() == {"id": first, "outcome": "approved", "status": "queued"}
    assert count(routed_hub, outbox, outbox.c.record_id == first, outbox.c.kind == "deliver") == 1
    again = client.post(url.format(first, "approve"), headers=verifikator)
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"status": "queued"}
    no_reason = client.post(url.format(second, "reject"), headers=verifikator)
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["details"] == {"field": "reason"}
    blank = client.post(url.format(second, "reject"), json={"reason": "  "}, headers=verifikator)
    assert blank.status_code == 422
    with_nik = {"reason": "NIK 3273 0145 0790 0002 salah"}
    assert (
        client.post(url.format(second, "reject"), json=with_nik, headers=verifikator).status_code
        == 422
    )
    reason = {"reason": "Nama ibu tidak sesuai akta"}
    rejected = client.post(url.format(second, "reject"), json=reason, headers=verifikator)
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    record = client.get(f"/api/v1/records/{second}", headers=operator).json()
    assert record["reason"] == "Nama ibu tidak sesuai akta"
    assert client.post(url.format(999, "approve"), headers=verifikator).status_code == 404


@pytest.mark.parametrize(
    ("role", "wilayah", "status"),
    [
        ("operator", KELURAHAN, 403),  # no records:approve
        ("verifikator", "32.73.02", 403),  # another kecamatan
        ("verifikator", "32.74.01", 403),  # another kota
        ("verifikator", "32.73.01", 200),
        ("admin", "", 200),
    ],
)
def test_who_may_approve(
    client: TestClient,
    operator: dict[str, str],
    auth: Headers,
    routed_hub: Hub,
    role: Any,
    wilayah: str,
    status: int,
) -> None:
    [record_id] = stored(client, operator, 1)
    waiting(routed_hub, record_id)
    before = len(denials(routed_hub))
    answer = client.post(f"/api/v1/records/{record_id}/approve", headers=auth(role, wilayah))
    assert answer.status_code == status, answer.text
    assert len(denials(routed_hub)) == before + (1 if status == 403 else 0)


def test_bulk_decisions_are_reported_per_id(
    client: TestClient,
    operator: dict[str, str],
    verifikator: dict[str, str],
    auth: Headers,
    routed_hub: Hub,
) -> None:
    mine = stored(client, operator, 1, 2, 3)
    [elsewhere] = stored(client, auth("operator", "32.73.02.1001"), 4, kode_wilayah="32.73.02.1001")
    waiting(routed_hub, mine[0], mine[1], elsewhere)
    ids = [mine[0], mine[1], mine[2], elsewhere, 999, mine[0]]
    answer = client.post("/api/v1/records/approve", json={"ids": ids}, headers=verifikator)
    assert answer.status_code == 207, answer.text
    body = answer.json()
    outcomes = [(r["id"], r["outcome"]) for r in body["results"]]
    assert outcomes == [
        (mine[0], "approved"),
        (mine[1], "approved"),
        (mine[2], "skipped"),
        (elsewhere, "forbidden"),
        (999, "not_found"),
    ]
    assert body["results"][2]["reason"] == "status is verifying"
    assert body["counts"] == {"approved": 2, "skipped": 1, "not_found": 1, "forbidden": 1}
    assert any("32.73.02.1001" in details for details in denials(routed_hub))
    waiting(routed_hub, mine[2])
    rejected = client.post(
        "/api/v1/records/reject", json={"ids": [mine[2]], "reason": "ganda"}, headers=verifikator
    )
    assert rejected.status_code == 200
    assert rejected.json()["results"] == [
        {"id": mine[2], "outcome": "rejected", "status": "rejected"}
    ]
    for bad in ({"ids": []}, {"ids": ["1"]}, {"ids": [1, True]}, {"reason": "x"}, {"ids": [1]}):
        refused = client.post("/api/v1/records/reject", json=bad, headers=verifikator)
        assert refused.status_code == 422, bad


# ------------------------------------------------------------------ NIK verification


@pytest.fixture
def sandbox(app: Starlette, routed_hub: Hub, client: TestClient) -> Iterator[Sandbox]:
    """The Dukcapil simulator in process; the app's verifier talks to it (`nik_transport`)."""
    assert routed_hub.routes is not None
    box = Sandbox(routed_hub.routes, people=[mother(1), FATHER])
    app.state.nik_transport = box.dukcapil_wire
    yield box
    verifier = getattr(app.state, "nik_verifier", None)
    if verifier is not None:
        assert client.portal is not None
        client.portal.call(verifier.aclose)


def test_verify_a_nik_with_dukcapil_and_its_cache(
    client: TestClient, operator: dict[str, str], sandbox: Sandbox, routed_hub: Hub
) -> None:
    url = "/api/v1/nik/3273014507900001/verify"
    params = {"nama": "Siti Aminah", "tanggal_lahir": "1990-07-05"}
    answer = client.get(url, params=params, headers=operator)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["found"] is True
    assert body["code"] == "00"
    assert body["cached"] is False
    assert body["verdicts"]["nama"]["match"] is True
    assert body["verdicts"]["tanggal_lahir"] == {"match": True, "score": None}
    again = client.get(url, params=params, headers=operator).json()
    assert again["cached"] is True
    assert again["verdicts"] == body["verdicts"]
    assert len(sandbox.dukcapil_wire.bodies) == 1  # asked once
    wrong = client.get(url, params={"nama": "Rina Wati"}, headers=operator).json()
    assert wrong["found"] is True
    assert wrong["verdicts"]["nama"]["match"] is False
    unknown = client.get("/api/v1/nik/3273010101990009/verify", params=params, headers=operator)
    assert unknown.json() == {"found": False, "code": "13", "verdicts": {}, "cached": False}
    with routed_hub.engine.connect() as conn:
        events = list(
            conn.execute(
                sa.select(audit_events.c.entity_id, audit_events.c.details).where(
                    audit_events.c.action == "nik.verified"
                )
            )
        )
    assert len(events) == 4
    assert all("3273014507900001" not in e.entity_id + e.details for e in events)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/nik/12345/verify", {"nama": "Siti"}, 422),
        ("/api/v1/nik/3273014507900001/verify", {}, 400),
        ("/api/v1/nik/3273014507900001/verify", {"tanggal_lahir": "05-07-1990"}, 400),
    ],
)
def test_bad_verify_requests(
    client: TestClient, operator: dict[str, str], path: str, params: dict[str, str], status: int
) -> None:
    assert client.get(path, params=params, headers=operator).status_code == status


def test_verify_needs_its_scope(client: TestClient, auth: Headers, routed_hub: Hub) -> None:
    answer = client.get(
        "/api/v1/nik/3273014507900001/verify", params={"nama": "Siti"}, headers=auth("auditor", "")
    )
    assert answer.status_code == 403
    assert all("3273014507900001" not in details for details in denials(routed_hub))


def test_verify_waits_outside_the_allowed_hours(
    app: Starlette, client: TestClient, operator: dict[str, str], routed_hub: Hub
) -> None:
    assert routed_hub.routes is not None
    box = Sandbox(routed_hub.routes, people=[mother(1)])
    config = dataclasses.replace(
        routed_hub.routes.connectors["dukcapil"],
        allowed_hours=AllowedHours(dt.time(6), dt.time(22), "Asia/Jakarta"),
    )
    late = dt.datetime(2025, 7, 1, 16, 30, tzinfo=dt.UTC)  # 23:30 WIB
    verifier = NikVerifier(
        routed_hub, config, connector=box.connectors()["dukcapil"], now=lambda: late
    )
    app.state.nik_verifier = verifier
    try:
        answer = client.get(
            "/api/v1/nik/3273014507900001/verify", params={"nama": "Siti"}, headers=operator
        )
    finally:
        assert client.portal is not None
        client.portal.call(verifier.aclose)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "outside_hours"
    assert answer.headers["retry-after"] == str(int(6.5 * 3600))
    assert box.dukcapil_wire.bodies == []


def test_control_characters_and_huge_ids_are_refused(
    client: TestClient, operator: dict[str, str], verifikator: dict[str, str], routed_hub: Hub
) -> None:
    answer = submit(client, operator, [birth(1), birth(2, jenis_kelamin="P\x00")])
    assert answer.status_code == 207
    assert answer.json()["results"][1]["issues"][0]["code"] == "not_a_value"
    [record_id] = stored(client, operator, 3)
    waiting(routed_hub, record_id)
    url = f"/api/v1/records/{record_id}/reject"
    assert client.post(url, json={"reason": "a\x00b"}, headers=verifikator).status_code == 422
    assert client.get(f"/api/v1/records/{2**70}", headers=operator).status_code == 404
    huge = client.post("/api/v1/records/approve", json={"ids": [2**40]}, headers=verifikator)
    assert huge.status_code == 422


def test_verify_keeps_the_quota_the_rate_and_a_stopped_connector(
    app: Starlette,
    client: TestClient,
    operator: dict[str, str],
    routed_hub: Hub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert routed_hub.routes is not None
    box = Sandbox(routed_hub.routes, people=[mother(1), mother(2), FATHER])
    config = dataclasses.replace(
        routed_hub.routes.connectors["dukcapil"],
        daily_quota=DailyQuota(limit=2),
        rate_limit=RateLimit(per_second=0.01),
    )
    monkeypatch.setattr(verify, "RATE_WAIT", 0.05)
    verifier = NikVerifier(routed_hub, config, connector=box.connectors()["dukcapil"])
    app.state.nik_verifier = verifier
    url = "/api/v1/nik/{}/verify"
    params = {"nama": "Siti Aminah"}
    try:
        first = client.get(url.format("3273014507900001"), params=params, headers=operator)
        busy = client.get(url.format("3273014507900002"), params=params, headers=operator)
        cached = client.get(url.format("3273014507900001"), params=params, headers=operator)
        verifier.limiter = None
        second = client.get(url.format("3273014507900002"), params=params, headers=operator)
        spent = client.get(url.format("3273010101880002"), params=params, headers=operator)
        with routed_hub.engine.begin() as conn:
            conn.execute(
                connector_state.insert().values(
                    connector="dukcapil", state="stopped", reason="login", updated_at=utc_now()
                )
            )
        stopped = client.get(url.format("3273010101880002"), params=params, headers=operator)
    finally:
        assert client.portal is not None
        client.portal.call(verifier.aclose)
    assert first.status_code == 200
    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "busy"
    assert cached.json()["cached"] is True  # the cache spends neither rate nor quota
    assert second.status_code == 200
    assert spent.status_code == 503
    assert spent.json()["error"]["code"] == "quota_exhausted"
    assert int(spent.headers["retry-after"]) > 0
    assert stopped.status_code == 503
    assert "stopped" in stopped.json()["error"]["message"]
    assert len(box.dukcapil_wire.bodies) == 2
