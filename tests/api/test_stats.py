"""`GET /stats`: the read model's counts, equal to counting the records, per region level,
only within the caller's region, and never by scanning `records`."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from hub.context import Hub
from hub.stats import month_of
from hub.store.tables import audit_events, records
from tests.api.test_operations import CIPAGANTI, GEGERKALONG, SUKARASA, populate
from tests.builders import KEMATIAN_HEADER, kematian_row
from tests.hub.test_dispatcher import ingest

MALEBER = "32.73.05.1001"
WIDTH = {1: 2, 2: 5, 3: 8, 4: 13}


@pytest.fixture
def stocked(routed_hub: Hub, tmp_path: Path) -> Hub:
    """Births in three kelurahan (dead, verify_failed; June and July), and deaths waiting
    for verification in two (March and July)."""
    populate(routed_hub, tmp_path)
    deaths = [
        kematian_row("3273011407500001"),
        kematian_row("3273011407500002", **{"Kode Desa": MALEBER}),
        kematian_row("3273011407500003", **{"Kode Desa": MALEBER, "Tgl Meninggal": "02/03/2025",
                                             "Tanggal Lapor": "05/03/2025"}),
    ]  # fmt: skip
    report = ingest(routed_hub, tmp_path, KEMATIAN_HEADER, deaths, "kematian", "mati.csv")
    assert report.counts.valid == 3, report.issues
    return routed_hub


def truth(hub: Hub, level: int, region: str = "") -> Counter[tuple[str, str, str, str | None]]:
    """Counting the records themselves."""
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                records.c.record_type,
                records.c.status,
                records.c.kode_wilayah,
                records.c.event_date,
            )  # fmt: skip
        ).all()
    counted: Counter[tuple[str, str, str, str | None]] = Counter()
    for kind, status, kode, date in rows:
        if region and not (kode == region or kode.startswith(region + ".")):
            continue
        counted[(kind, status, kode[: WIDTH[level]], month_of(date) or None)] += 1
    return counted


def groups(body: dict[str, Any]) -> Counter[tuple[str, str, str, str | None]]:
    return Counter(
        {(g["type"], g["status"], g["wilayah"], g["month"]): g["count"] for g in body["groups"]}
    )


def test_counts_equal_counting_the_records_at_every_level(stocked, client, auth):
    admin = auth("admin", "")
    for level in (1, 2, 3, 4):
        answer = client.get("/api/v1/stats", params={"level": level}, headers=admin)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert groups(body) == truth(stocked, level)
        assert body["total"] == 9
        assert (body["level"], body["wilayah"]) == (level, None)
    desa = client.get("/api/v1/stats", params={"level": 4}, headers=admin).json()["groups"]
    names = {g["wilayah"]: g["nama"] for g in desa}
    assert names[SUKARASA] == "Sukarasa"
    assert names[MALEBER] == "Maleber"
    assert {g["status"] for g in desa} == {"dead", "verify_failed", "verifying"}
    assert {g["month"] for g in desa} == {"2025-03", "2025-06", "2025-07"}


def test_default_level_is_one_below_the_region(stocked, client, auth):
    expected = {"": 1, "32": 2, "32.73": 3, "32.73.01": 4, SUKARASA: 4}
    for region, level in expected.items():
        params = {"wilayah": region} if region else {}
        body = client.get("/api/v1/stats", params=params, headers=auth("admin", "")).json()
        assert body["level"] == level
        assert groups(body) == truth(stocked, level, region)


def test_filters(stocked, client, auth):
    admin = auth("admin", "")

    def ask(**params: Any) -> Counter[Any]:
        answer = client.get("/api/v1/stats", params={"level": 4, **params}, headers=admin)
        assert answer.status_code == 200, answer.text
        return groups(answer.json())

    every = truth(stocked, 4)
    assert ask(type="kematian") == Counter({k: n for k, n in every.items() if k[0] == "kematian"})
    assert ask(status="dead") == Counter({k: n for k, n in every.items() if k[1] == "dead"})
    assert ask(**{"from": "2025-07"}) == Counter(
        {k: n for k, n in every.items() if k[3] == "2025-07"}
    )
    assert ask(to="2025-06") == Counter(
        {k: n for k, n in every.items() if k[3] in ("2025-03", "2025-06")}
    )
    assert ask(**{"from": "2025-04", "to": "2025-06"}) == Counter(
        {("kelahiran", "dead", GEGERKALONG, "2025-06"): 1}
    )
    assert ask(type="pindah") == Counter()
    assert ask(wilayah="32.73.02", status="dead") == Counter(
        {("kelahiran", "dead", CIPAGANTI, "2025-07"): 1}
    )


def test_only_the_callers_region_is_counted(stocked, client, auth):
    callers = [
        ("operator", SUKARASA, ()),
        ("verifikator", "32.73.01", ()),
        ("auditor", "32.73", ()),
        ("admin", "32.73.05", ()),
        ("system", "32", ("stats:read",)),
        ("admin", "32.74", ()),
    ]
    for role, wilayah, scopes in callers:
        caller = auth(role, wilayah, scopes)
        answer = client.get("/api/v1/stats", params={"level": 4}, headers=caller)
        assert answer.status_code == 200
        body = answer.json()
        assert body["wilayah"] == wilayah
        assert groups(body) == truth(stocked, 4, wilayah), wilayah
        assert all(g["wilayah"].startswith(wilayah + ".") or g["wilayah"] == wilayah
                   for g in body["groups"])  # fmt: skip
    kota = client.get("/api/v1/stats", headers=auth("verifikator", "32.73.01")).json()
    assert {g["wilayah"] for g in kota["groups"]} == {SUKARASA, GEGERKALONG}


def test_a_region_outside_the_callers_is_refused_and_audited(stocked, client, auth):
    operator = auth("operator", SUKARASA)
    outside = [GEGERKALONG, "32.73.01", "32.74", "32"]  # sibling, parent kecamatan, other kota
    for region in outside:
        answer = client.get("/api/v1/stats", params={"wilayah": region}, headers=operator)
        assert answer.status_code == 403
        assert answer.json()["error"]["details"] == {"reason": "wilayah", "wilayah": region}
    inside = client.get("/api/v1/stats", params={"wilayah": SUKARASA}, headers=operator)
    assert inside.status_code == 200
    verifikator = auth("verifikator", "32.73.01")
    assert (
        client.get(
            "/api/v1/stats", params={"wilayah": GEGERKALONG}, headers=verifikator
        ).status_code
        == 200
    )
    assert (
        client.get("/api/v1/stats", params={"wilayah": "32.73.02"}, headers=verifikator).status_code
        == 403
    )
    with stocked.engine.connect() as conn:
        events = conn.execute(
            sa.select(audit_events)
            .where(audit_events.c.action == "access.denied")
            .order_by(audit_events.c.id)
        ).all()
    details = [orjson.loads(e.details) for e in events]
    assert [d["wilayah"] for d in details] == [*outside, "32.73.02"]
    assert {e.entity_id for e in events} == {"GET /stats"}
    assert [e.actor for e in events] == ["user:test-operator"] * 4 + ["user:test-verifikator"]


def test_a_system_without_the_scope_is_refused(stocked, client, auth):
    answer = client.get("/api/v1/stats", headers=auth("system", "", ("deliveries:read",)))
    assert answer.status_code == 403
    assert answer.json()["error"]["details"] == {"reason": "scope", "scope": "stats:read"}
    assert client.get("/api/v1/stats").status_code == 401


def test_bad_input(routed_hub, client, auth):
    cases = [
        ({"level": "5"}, "level"),
        ({"level": "0"}, "level"),
        ({"level": "two"}, "level"),
        ({"type": "lahir"}, "type"),
        ({"type": "Kelahiran"}, "type"),
        ({"status": "lost"}, "status"),
        ({"from": "2025-13"}, "from"),
        ({"from": "2025-1"}, "from"),
        ({"to": "July"}, "to"),
        ({"from": "2025-07", "to": "2025-06"}, "to"),
        ({"wilayah": "32.7"}, "wilayah"),
        ({"wilayah": "3273"}, "wilayah"),
        ({"wilayah": "32.73.01", "level": "2"}, "level"),
    ]
    for params, parameter in cases:
        answer = client.get("/api/v1/stats", params=params, headers=auth("admin", ""))
        assert answer.status_code == 400, params
        assert answer.json()["error"] == {
            "code": "bad_request",
            "message": answer.json()["error"]["message"],
            "details": {"parameter": parameter},
        }


def test_answered_from_the_read_model_never_from_records(stocked, client, auth):
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(stocked.engine, "before_cursor_execute", seen)
    try:
        for level in (1, 4):
            answer = client.get("/api/v1/stats", params={"level": level}, headers=auth("admin", ""))
            assert answer.status_code == 200
    finally:
        sa.event.remove(stocked.engine, "before_cursor_execute", seen)
    assert any("record_counts" in s and "GROUP BY" in s for s in statements)
    assert not [s for s in statements if re.search(r"\brecords\b", s)]
