"""Every page through the portal: what each role sees, and what it may not open."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hub.context import Hub
from hub.store.tables import outbox
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_xlsx
from tests.portal.conftest import csrf_of, fixed_xlsx, log_in, messy_xlsx
from tests.portal.helpers import denials, statuses, upload, waiting


def test_the_result_shows_counts_problems_by_column_and_a_filter(
    browser: TestClient, tmp_path: Path
) -> None:
    log_in(browser, "siti.op")
    batch_id = upload(browser, messy_xlsx(tmp_path / "lahir juli.xlsx"))
    page = browser.get(f"/hasil/{batch_id}")
    assert page.status_code == 200
    counts = dict(re.findall(r'<dd id="n-(\w+)">(\d+)</dd>', page.text))
    assert counts == {"rows": "5", "valid": "2", "invalid": "3", "duplicates": "0",
                      "warnings": "0", "corrected": "0"}  # fmt: skip
    rows = re.findall(r"<tr class=\"error\"><td>(\d+)</td><td>Juli</td><td>([^<]*)</td>", page.text)
    assert rows == [("4", "NIK Ibu"), ("5", "Tgl Lahir"), ("6", "Nama Ibu")]
    assert "NIK ibu tidak valid" in page.text
    assert "31/02/2025" in page.text
    only = browser.get(f"/hasil/{batch_id}?kode=date_invalid")
    assert re.findall(r"<tr class=\"error\"><td>(\d+)</td>", only.text) == ["5"]
    assert browser.get(f"/hasil/{batch_id}?kode=<script>").status_code == 200  # ignored
    report = browser.get(f"/hasil/{batch_id}/laporan.xlsx")
    assert report.status_code == 200
    assert report.content[:2] == b"PK"


def test_a_corrected_upload_says_what_changed(browser: TestClient, tmp_path: Path) -> None:
    log_in(browser, "siti.op")
    first = upload(browser, messy_xlsx(tmp_path / "lahir.xlsx"))
    again = browser.get(f"/hasil/{first}/unggah-ulang")
    assert again.status_code == 200
    assert 'data-previous="' + str(first) + '"' in again.text
    assert '<option value="kelahiran" selected>' in again.text
    rows = [kelahiran_row(i) for i in range(1, 6)]
    rows[4] = kelahiran_row(5, **{"Tempat Lahir": "Cimahi"})  # an accepted row, changed
    fixed = write_xlsx(tmp_path / "lahir-perbaikan.xlsx", KELAHIRAN_HEADER, rows)
    second = upload(browser, fixed)
    page = browser.get(f"/hasil/{second}?sebelumnya={first}")
    text = page.text
    assert f"Dibandingkan dengan unggahan #{first}" in text
    assert "Sebelumnya: 3 baris ditolak dari 5." in text
    assert "1 baris sudah diterima sebelumnya (tidak diproses ulang)" in text
    assert "3 baris baru diterima" in text
    assert "1 baris diperbaiki (versi baru dikirim ulang)" in text
    assert "0 baris masih ditolak" in text
    assert "Baris — sudah diterima: 3</p>" in text
    assert "Baris — baru: 4, 5, 6</p>" in text
    assert "Baris — diperbaiki: 7</p>" in text
    duplicates = browser.get(f"/hasil/{second}?kode=duplicate")
    assert re.findall(r"<tr class=\"warning\"><td>(\d+)</td>", duplicates.text) == ["3"]


def test_an_operator_cannot_open_another_kelurahans_batch(
    browser: TestClient, tmp_path: Path, routed_hub: Hub
) -> None:
    log_in(browser, "siti.op")
    batch_id = upload(browser, messy_xlsx(tmp_path / "lahir.xlsx"))
    log_in(browser, "andi.op")  # 32.73.01.1002, the next kelurahan
    for path in ("", "/status", "/laporan.xlsx", "/unggah-ulang"):
        answer = browser.get(f"/hasil/{batch_id}{path}")
        assert answer.status_code == 403, path
    page = browser.get(f"/hasil/{batch_id}")
    assert "Akses ditolak" in page.text
    assert "di luar peran atau wilayah Anda" in page.text
    refused = [d for d in denials(routed_hub) if d["actor"] == "user:andi.op"]
    assert refused
    assert all(d["reason"] == "wilayah" for d in refused)
    assert browser.get("/hasil/999999").status_code == 404
    # nor open it as the previous upload of their own
    log_in(browser, "andi.op")
    own = upload(browser, write_xlsx(tmp_path / "b.xlsx", KELAHIRAN_HEADER,
                                     [kelahiran_row(9, **{"Kode Desa": "32.73.01.1002"})]))  # fmt: skip
    assert browser.get(f"/hasil/{own}?sebelumnya={batch_id}").status_code == 403


def test_values_are_masked_for_a_role_without_pii_read(browser: TestClient, tmp_path: Path) -> None:
    log_in(browser, "siti.op")
    batch_id = upload(browser, messy_xlsx(tmp_path / "lahir.xlsx"))
    assert "32730145079" in browser.get(f"/hasil/{batch_id}").text
    log_in(browser, "audit.pusat")  # batches:read, no pii:read
    page = browser.get(f"/hasil/{batch_id}")
    assert page.status_code == 200
    assert "32730145079" not in page.text
    assert "***********" in page.text
    assert browser.get(f"/hasil/{batch_id}/laporan.xlsx").status_code == 403


def test_pages_refuse_roles_without_their_scope(browser: TestClient) -> None:
    expected = {
        "siti.op": {
            "/unggah": 200,
            "/persetujuan": 403,
            "/pengiriman": 403,
            "/statistik": 200,
            "/audit": 403,
        },
        "dewi.ver": {
            "/unggah": 403,
            "/persetujuan": 200,
            "/pengiriman": 403,
            "/statistik": 200,
            "/audit": 403,
        },
        # audit:read, but audit events carry no region: only a nasional caller lists them
        "admin.kota": {
            "/unggah": 200,
            "/persetujuan": 200,
            "/pengiriman": 200,
            "/statistik": 200,
            "/audit": 403,
        },
        "audit.pusat": {
            "/unggah": 403,
            "/persetujuan": 403,
            "/pengiriman": 403,
            "/statistik": 200,
            "/audit": 200,
        },
    }
    for person, pages in expected.items():
        log_in(browser, person)
        seen = {path: browser.get(path).status_code for path in pages}
        assert seen == pages, person
        menu = browser.get("/statistik").text
        for path, status in pages.items():
            if (person, path) != ("admin.kota", "/audit"):  # the menu follows the scopes
                assert (f'<a href="{path}"' in menu) == (status == 200), (person, path)


def test_the_verifikator_approves_and_rejects_one_or_many(
    browser: TestClient, tmp_path: Path, routed_hub: Hub
) -> None:
    log_in(browser, "siti.op")
    upload(browser, fixed_xlsx(tmp_path / "lahir.xlsx"))
    ids = waiting(routed_hub)
    assert len(ids) == 5
    log_in(browser, "rudi.ver")  # another kecamatan: sees none of them
    assert "Tidak ada data yang menunggu" in browser.get("/persetujuan").text
    log_in(browser, "dewi.ver")
    page = browser.get("/persetujuan")
    assert re.findall(r'<tr data-id="(\d+)">', page.text) == [str(i) for i in ids]
    assert "Siti Aminah" in page.text or "Aisyah Putri" in page.text  # pii:read: names shown
    token = csrf_of(page.text)
    one = browser.post("/persetujuan", data={"csrf_token": token, "aksi": f"setujui:{ids[0]}"})
    assert one.status_code == 303
    assert one.headers["location"] == "/persetujuan?disetujui=1&ditolak=0&dilewati=0"
    no_reason = browser.post(
        "/persetujuan", data={"csrf_token": token, "aksi": "tolak", "ids": [str(ids[1])]}
    )
    assert no_reason.headers["location"] == "/persetujuan?galat=need_reason"
    assert "Tulis alasan penolakan" in browser.get(no_reason.headers["location"]).text
    none_chosen = browser.post("/persetujuan", data={"csrf_token": token, "aksi": "setujui"})
    assert none_chosen.headers["location"] == "/persetujuan?galat=need_ids"
    rejected = browser.post(
        "/persetujuan",
        data={
            "csrf_token": token,
            "aksi": "tolak",
            "ids": [str(ids[1])],
            "alasan": "Nama ibu tidak sesuai akta",
        },  # fmt: skip
    )
    assert rejected.headers["location"] == "/persetujuan?disetujui=0&ditolak=1&dilewati=0"
    many = browser.post(
        "/persetujuan",
        data={"csrf_token": token, "aksi": "setujui", "ids": [str(i) for i in ids[1:]]},
    )
    assert many.headers["location"] == "/persetujuan?disetujui=3&ditolak=0&dilewati=1"
    assert "3 disetujui, 0 ditolak, 1 dilewati." in browser.get(many.headers["location"]).text
    now = statuses(routed_hub)
    assert now[ids[1]] == "rejected"
    assert {now[i] for i in (ids[0], *ids[2:])} == {"queued"}
    bad = browser.post("/persetujuan", data={"csrf_token": token, "aksi": "hapus", "ids": "1"})
    assert bad.status_code == 422


def test_a_verifikator_cannot_decide_for_another_kecamatan(
    browser: TestClient, tmp_path: Path, routed_hub: Hub
) -> None:
    log_in(browser, "siti.op")
    upload(browser, fixed_xlsx(tmp_path / "lahir.xlsx"))
    ids = waiting(routed_hub)
    log_in(browser, "rudi.ver")
    token = csrf_of(browser.get("/persetujuan").text)
    answer = browser.post("/persetujuan", data={"csrf_token": token, "aksi": f"setujui:{ids[0]}"})
    assert answer.headers["location"] == "/persetujuan?disetujui=0&ditolak=0&dilewati=1"
    assert set(statuses(routed_hub).values()) == {"pending_approval"}
    assert any(d["actor"] == "user:rudi.ver" for d in denials(routed_hub))
    # nor read their rows through the live list
    assert "<tr data-id" not in browser.get(f"/persetujuan/baris?id={ids[0]}").text


def test_new_records_are_announced_by_server_sent_events(
    app: Starlette, browser: TestClient, tmp_path: Path, routed_hub: Hub
) -> None:
    app.state.portal_stream_lifetime = 0.3
    app.state.portal_stream_interval = 0.1
    log_in(browser, "siti.op")
    upload(browser, fixed_xlsx(tmp_path / "lahir.xlsx"))
    ids = waiting(routed_hub)
    log_in(browser, "dewi.ver")
    with browser.stream("GET", "/persetujuan/aliran") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = b"".join(stream.iter_bytes()).decode()
    assert body.startswith("retry: 2000\n\n")
    events = re.findall(r"event: antrean\ndata: (.*)\n\n", body)
    assert [orjson.loads(e) for e in events][0] == {"ids": ids}
    assert len(events) == 1  # nothing changed afterwards: keep-alive comments only
    rows = browser.get("/persetujuan/baris?id=" + "&id=".join(map(str, ids[:2])))
    assert re.findall(r'<tr data-id="(\d+)">', rows.text) == [str(i) for i in ids[:2]]
    log_in(browser, "siti.op")
    assert browser.get("/persetujuan/aliran").status_code == 403


def test_deliveries_show_connectors_and_replay_a_dead_letter(
    browser: TestClient, tmp_path: Path, routed_hub: Hub
) -> None:
    log_in(browser, "siti.op")
    upload(browser, fixed_xlsx(tmp_path / "lahir.xlsx"))
    with routed_hub.engine.begin() as conn:
        dead_id = conn.execute(sa.select(sa.func.min(outbox.c.id))).scalar_one()
        conn.execute(
            outbox.update().where(outbox.c.id == dead_id)
            .values(status="dead", last_code="13", last_error="NIK tidak ditemukan", attempts=4)
        )  # fmt: skip
    assert browser.get("/pengiriman").status_code == 403
    log_in(browser, "admin.kota")
    page = browser.get("/pengiriman")
    assert re.findall(r'<tr data-connector="(\w+)">', page.text) == ["dukcapil", "siak"]
    assert "NIK tidak ditemukan" in page.text
    assert f'action="/pengiriman/{dead_id}/ulang"' in page.text
    answer = browser.post(f"/pengiriman/{dead_id}/ulang", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/pengiriman?diulang={dead_id}"
    assert f"Pesan {dead_id} diantrekan lagi." in browser.get(answer.headers["location"]).text
    with routed_hub.engine.connect() as conn:
        status = conn.execute(sa.select(outbox.c.status).where(outbox.c.id == dead_id)).scalar_one()
    assert status == "queued"
    again = browser.post(f"/pengiriman/{dead_id}/ulang", data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 409


def test_statistics_drill_down_within_the_callers_region(
    browser: TestClient, tmp_path: Path
) -> None:
    log_in(browser, "siti.op")
    upload(browser, fixed_xlsx(tmp_path / "lahir.xlsx"))
    page = browser.get("/statistik")
    assert page.status_code == 200
    assert '<strong id="total">5</strong>' in page.text
    assert '<figure class="chart" id="bulan">' in page.text
    assert "2025-07" in page.text
    assert "<svg" in page.text
    assert "/statistik?wilayah=" not in page.text.replace(
        'href="/statistik?wilayah=32.73.01.1001', ""
    )
    assert browser.get("/statistik?wilayah=32.73.01").status_code == 403  # the operator's kecamatan
    assert browser.get("/statistik?wilayah=32.73.01.1002").status_code == 403
    log_in(browser, "admin.kota")
    kota = browser.get("/statistik")
    assert 'href="/statistik?wilayah=32.73.01"' in kota.text  # kecamatan, one level down
    kecamatan = browser.get("/statistik?wilayah=32.73.01&jenis=kelahiran")
    assert 'href="/statistik?wilayah=32.73.01.1001&amp;jenis=kelahiran"' in kecamatan.text
    kelurahan = browser.get("/statistik?wilayah=32.73.01.1001")
    assert '<strong id="total">5</strong>' in kelurahan.text
    assert '<strong id="total">0</strong>' in browser.get("/statistik?jenis=kematian").text
    assert browser.get("/statistik?wilayah=33").status_code == 403


def test_the_audit_trail_is_searched_by_record_user_and_date(
    browser: TestClient, tmp_path: Path, routed_hub: Hub
) -> None:
    log_in(browser, "siti.op")
    upload(browser, fixed_xlsx(tmp_path / "lahir.xlsx"))
    ids = waiting(routed_hub)
    log_in(browser, "dewi.ver")
    token = csrf_of(browser.get("/persetujuan").text)
    browser.post("/persetujuan", data={"csrf_token": token, "aksi": f"setujui:{ids[0]}"})
    log_in(browser, "audit.kota")
    assert browser.get("/audit").status_code == 403  # events carry no region: nasional only
    log_in(browser, "audit.pusat")
    page = browser.get("/audit")
    assert "Rantai hash utuh" in page.text
    by_record = browser.get(f"/audit?rekaman={ids[0]}")
    actions = re.findall(r"<td><code>([a-z_.]+)</code></td>", by_record.text)
    assert "record.approved" in actions
    by_user = browser.get("/audit?pengguna=dewi.ver")
    assert set(re.findall(r"<td>(user:[a-z.]+)</td>", by_user.text)) == {"user:dewi.ver"}
    none = browser.get("/audit?pengguna=dewi.ver&dari=2000-01-01&sampai=2000-01-02")
    assert "Tidak ada kejadian yang cocok" in none.text
    bad = browser.get("/audit?dari=kemarin")
    assert bad.status_code == 200
    assert "Isian pencarian tidak sah" in bad.text
    assert "3273" not in by_record.text  # no NIK in the trail
