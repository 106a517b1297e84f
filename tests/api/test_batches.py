"""POST /batches and what became of the upload: status, issues, the annotated report."""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hub.api.app import create_app
from hub.batch import utc_now
from hub.context import Hub
from hub.store.tables import audit_events, batch_files, batches
from tests.api.conftest import Headers
from tests.builders import KELAHIRAN_HEADER, encrypted_workbook, kelahiran_row, write_table

KELURAHAN = "32.73.01.1001"
SIBLING = "32.73.01.1002"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_file(
    tmp_path: Path, name: str = "lahir.csv", rows: list[list[Any]] | None = None
) -> Path:
    rows = rows if rows is not None else [kelahiran_row(1), kelahiran_row(2)]
    return write_table(tmp_path / name, KELAHIRAN_HEADER, rows)


def upload(
    client: TestClient,
    headers: dict[str, str],
    content: bytes,
    name: str = "lahir.csv",
    **fields: str,
) -> Any:
    data = {"type": "kelahiran", **fields}
    files = {"file": (name, content, "application/octet-stream")}
    return client.post("/api/v1/batches", files=files, data=data, headers=headers)


def wait_done(client: TestClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """Poll the status URL until the batch is done or failed (at most 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in {"done", "failed"}:
            return body
        assert time.monotonic() < deadline, f"batch still {body['status']}"
        time.sleep(0.05)


def denials(hub: Hub) -> list[str]:
    with hub.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(audit_events.c.details)
                .where(audit_events.c.action == "access.denied")
                .order_by(audit_events.c.id)
            ).scalars()
        )


@pytest.fixture
def operator(auth: Headers) -> dict[str, str]:
    return auth("operator", KELURAHAN)


@pytest.fixture
def done_batch(client: TestClient, operator: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """A processed upload: two valid rows, one with a bad mother's NIK, one with a bad date."""
    rows = [
        kelahiran_row(1),
        kelahiran_row(2),
        kelahiran_row(3, **{"NIK Ibu": "12345"}),
        kelahiran_row(4, **{"Tgl Lahir": "31/02/2025"}),
    ]
    path = report_file(tmp_path, rows=rows)
    answer = upload(client, operator, path.read_bytes())
    assert answer.status_code == 202, answer.text
    return wait_done(client, answer.json()["status_url"], operator)


# ------------------------------------------------------------------ upload and status


def test_upload_answers_202_and_processes_in_the_background(
    client: TestClient, operator: dict[str, str], tmp_path: Path, routed_hub: Hub
) -> None:
    answer = upload(client, operator, report_file(tmp_path).read_bytes(), "Laporan Juli.csv")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued"
    assert body["status_url"] == f"/api/v1/batches/{body['batch_id']}"
    assert answer.headers["location"] == body["status_url"]
    status = wait_done(client, body["status_url"], operator)
    assert status["status"] == "done", status
    assert status["batch_id"] == body["batch_id"]
    assert (status["rows"], status["valid"], status["invalid"]) == (2, 2, 0)
    assert (status["duplicates"], status["warnings"], status["corrected"]) == (0, 0, 0)
    assert status["routed"] == {"verifying": 2}
    assert status["file"] == "Laporan Juli.csv"
    assert status["kelurahan"] == KELURAHAN
    assert status["source"] == "csv"
    assert status["issues_url"].endswith("/issues")
    with routed_hub.engine.connect() as conn:
        sealed = conn.execute(sa.select(batch_files.c.content)).scalar_one()
        actions = set(conn.execute(sa.select(audit_events.c.action)).scalars())
    assert b"Aisyah" not in sealed  # the upload is kept sealed
    assert {"batch.uploaded", "batch.ingested", "batch.routed"} <= actions


def test_xlsx_upload_is_read_by_content(
    client: TestClient, operator: dict[str, str], tmp_path: Path
) -> None:
    path = report_file(tmp_path, "lahir.xlsx")
    answer = upload(client, operator, path.read_bytes(), "lahir.csv")  # misnamed: no matter
    assert answer.status_code == 202, answer.text
    status = wait_done(client, answer.json()["status_url"], operator)
    assert (status["status"], status["source"], status["valid"]) == ("done", "excel", 2)


def test_a_file_without_a_header_fails_the_batch_with_a_reason(
    client: TestClient, operator: dict[str, str]
) -> None:
    answer = upload(client, operator, b"halo;dunia\n1;2\n")
    assert answer.status_code == 202
    status = wait_done(client, answer.json()["status_url"], operator)
    assert status["status"] == "failed"
    assert "Baris judul kolom" in status["error"]
    assert status["rows"] == 0


@pytest.mark.parametrize(
    ("content", "detected"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64, "program Windows"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "gambar PNG"),
        (b"%PDF-1.7\n", "PDF"),
        (b"<html><body><table><tr><td>1</td></tr></table></body></html>", "HTML"),
        (b"abc\x01\x02\x03def", "data biner"),
    ],
)
def test_a_file_that_is_not_a_report_is_415(
    client: TestClient, operator: dict[str, str], content: bytes, detected: str
) -> None:
    answer = upload(client, operator, content, "lahir.xlsx")  # the name does not matter
    assert answer.status_code == 415, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert detected in error["message"]
    assert "Unggah laporan sebagai CSV" in error["message"]


def test_a_zip_that_is_no_workbook_is_415(client: TestClient, operator: dict[str, str]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    answer = upload(client, operator, buffer.getvalue(), "lahir.xlsx")
    assert answer.status_code == 415
    assert answer.json()["error"]["details"] == {"detected": "dokumen Word"}


def test_unreadable_spreadsheets_are_422(
    client: TestClient, operator: dict[str, str], tmp_path: Path
) -> None:
    empty = upload(client, operator, b"", "lahir.csv")
    assert empty.status_code == 422
    assert empty.json()["error"]["code"] == "unreadable_file"
    locked = upload(client, operator, encrypted_workbook(tmp_path).read_bytes(), "lahir.xlsx")
    assert locked.status_code == 422
    assert "kata sandi" in locked.json()["error"]["message"]


def test_bad_upload_requests(client: TestClient, operator: dict[str, str], tmp_path: Path) -> None:
    content = report_file(tmp_path).read_bytes()
    only_type = {"type": (None, "kelahiran")}  # multipart without a file part
    no_file = client.post("/api/v1/batches", files=only_type, headers=operator)
    assert no_file.status_code == 422
    assert no_file.json()["error"]["details"] == {"field": "file"}
    files = {"file": ("lahir.csv", content, "text/csv")}
    no_type = client.post("/api/v1/batches", files=files, headers=operator)
    assert no_type.status_code == 422
    assert no_type.json()["error"]["details"] == {"field": "type"}
    wrong_type = upload(client, operator, content, type="lahir")
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"]["details"] == {"field": "type"}
    unknown_region = upload(client, operator, content, kelurahan="99.99.99.9999")
    assert unknown_region.status_code == 422
    as_json = client.post("/api/v1/batches", json={"type": "kelahiran"}, headers=operator)
    assert as_json.status_code == 415
    assert (
        client.post("/api/v1/batches", files=files, data={"type": "kelahiran"}).status_code == 401
    )


def test_an_upload_over_the_limit_is_413(
    routed_hub: Hub, app: Starlette, operator: dict[str, str], tmp_path: Path
) -> None:
    small = create_app(routed_hub, max_body=2048, tokens=app.state.tokens)
    rows = [kelahiran_row(i) for i in range(1, 60)]
    content = report_file(tmp_path, rows=rows).read_bytes()
    assert len(content) > 2048
    with TestClient(small, raise_server_exceptions=False) as client:
        answer = upload(client, operator, content)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_large"
    with routed_hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one() == 0


# ------------------------------------------------------------------ roles and regions


def test_an_operator_cannot_upload_for_a_sibling_kelurahan(
    client: TestClient, operator: dict[str, str], tmp_path: Path, routed_hub: Hub
) -> None:
    answer = upload(client, operator, report_file(tmp_path).read_bytes(), kelurahan=SIBLING)
    assert answer.status_code == 403
    assert answer.json()["error"]["details"] == {"reason": "wilayah", "wilayah": SIBLING}
    assert any(SIBLING in details for details in denials(routed_hub))
    with routed_hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one() == 0


def test_a_verifikator_cannot_upload(
    client: TestClient, auth: Headers, tmp_path: Path, routed_hub: Hub
) -> None:
    answer = upload(client, auth("verifikator", "32.73.01"), report_file(tmp_path).read_bytes())
    assert answer.status_code == 403
    assert answer.json()["error"]["details"] == {"reason": "scope", "scope": "batches:write"}
    assert any("batches:write" in details for details in denials(routed_hub))


@pytest.mark.parametrize(
    ("role", "wilayah", "allowed"),
    [
        ("operator", KELURAHAN, True),
        ("operator", SIBLING, False),
        ("verifikator", "32.73.01", True),
        ("verifikator", "32.73.02", False),
        ("operator", "32.74.01.1001", False),
        ("auditor", "32.73", True),
        ("auditor", "32.74", False),
        ("admin", "", True),
    ],
)
def test_who_may_read_a_batch(
    client: TestClient,
    auth: Headers,
    done_batch: dict[str, Any],
    routed_hub: Hub,
    role: Any,
    wilayah: str,
    allowed: bool,
) -> None:
    headers = auth(role, wilayah)
    batch_id = done_batch["batch_id"]
    before = len(denials(routed_hub))
    urls = [f"/api/v1/batches/{batch_id}", f"/api/v1/batches/{batch_id}/issues"]
    for url in urls:
        answer = client.get(url, headers=headers)
        assert answer.status_code == (200 if allowed else 403), (url, answer.text)
    assert len(denials(routed_hub)) == before + (0 if allowed else len(urls))


def test_a_batch_uploaded_by_an_admin_belongs_to_the_nasional_level(
    client: TestClient, auth: Headers, operator: dict[str, str], tmp_path: Path
) -> None:
    admin = auth("admin", "")
    answer = upload(client, admin, report_file(tmp_path).read_bytes())
    status = wait_done(client, answer.json()["status_url"], admin)
    assert status["kelurahan"] is None
    assert client.get(answer.json()["status_url"], headers=operator).status_code == 403


def test_unknown_batch_is_404(client: TestClient, operator: dict[str, str]) -> None:
    for url in (
        "/api/v1/batches/999",
        "/api/v1/batches/999/issues",
        "/api/v1/batches/999/report.xlsx",
    ):
        answer = client.get(url, headers=operator)
        assert answer.status_code == 404, url
        assert answer.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/batches/999").status_code == 401


# ------------------------------------------------------------------ issues


def test_issues_come_a_page_at_a_time(
    client: TestClient, operator: dict[str, str], done_batch: dict[str, Any]
) -> None:
    assert done_batch["invalid"] == 2
    url = done_batch["issues_url"]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = client.get(url, params=params, headers=operator).json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == len(seen) >= 2
    everything = client.get(url, headers=operator).json()
    assert everything["items"] == seen
    assert everything["next_cursor"] is None
    by_field = {issue["field"]: issue for issue in seen}
    assert by_field["nik_ibu"]["value"] == "12345"  # operators may read PII
    assert by_field["nik_ibu"]["severity"] == "error"
    assert by_field["tanggal_lahir"]["row"] == 7


def test_issue_values_are_masked_without_pii_read(
    client: TestClient, auth: Headers, done_batch: dict[str, Any]
) -> None:
    page = client.get(done_batch["issues_url"], headers=auth("auditor", "32.73")).json()
    by_field = {issue["field"]: issue for issue in page["items"]}
    assert by_field["nik_ibu"]["value"] == "*****"
    assert by_field["tanggal_lahir"]["value"] == "31/02/2025"  # not personal data


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "LTE"},  # "-1"
        {"cursor": "MTI="},  # "12", but not as the hub writes it
        {"limit": "0"},
        {"limit": "x"},
        {"limit": "5000"},
    ],
)
def test_bad_paging_is_400(
    client: TestClient, operator: dict[str, str], done_batch: dict[str, Any], params: dict[str, str]
) -> None:
    answer = client.get(done_batch["issues_url"], params=params, headers=operator)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "bad_request"


# ------------------------------------------------------------------ report.xlsx


def test_the_report_marks_every_issue_in_the_operators_file(
    client: TestClient, operator: dict[str, str], done_batch: dict[str, Any], tmp_path: Path
) -> None:
    answer = client.get(done_batch["report_url"], headers=operator)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == XLSX
    assert "lahir.hasil.xlsx" in answer.headers["content-disposition"]
    path = tmp_path / "hasil.xlsx"
    path.write_bytes(answer.content)
    workbook = load_workbook(path)
    assert workbook.sheetnames[0] == "Ringkasan"
    assert "Kesalahan" in workbook.sheetnames
    listed = [row for row in workbook["Kesalahan"].iter_rows(values_only=True) if row[0]]
    assert len(listed) - 1 == 2  # a header line and one line per issue


def test_the_report_needs_pii_read_and_a_finished_batch(
    client: TestClient,
    auth: Headers,
    operator: dict[str, str],
    done_batch: dict[str, Any],
    routed_hub: Hub,
) -> None:
    refused = client.get(done_batch["report_url"], headers=auth("auditor", "32.73"))
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"reason": "scope", "scope": "pii:read"}
    assert any("pii:read" in details for details in denials(routed_hub))
    with routed_hub.engine.begin() as conn:
        queued = conn.execute(
            batches.insert()
            .values(
                record_type="kelahiran",
                schema_version=1,
                source="csv",
                file_name="x.csv",
                kelurahan=KELURAHAN,
                status="queued",
                actor="user:test",
                created_at=utc_now(),
            )
            .returning(batches.c.id)
        ).scalar_one()
    waiting = client.get(f"/api/v1/batches/{queued}/report.xlsx", headers=operator)
    assert waiting.status_code == 409
    assert waiting.json()["error"]["details"] == {"status": "queued"}
    assert client.get(f"/api/v1/batches/{queued}", headers=operator).json()["status"] == "queued"


def test_uploads_leave_no_temporary_files(
    client: TestClient,
    operator: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    answer = upload(client, operator, report_file(tmp_path).read_bytes())
    status = wait_done(client, answer.json()["status_url"], operator)
    assert client.get(status["report_url"], headers=operator).status_code == 200
    assert upload(client, operator, b"MZ\x90\x00" + b"\x00" * 60).status_code == 415
    assert [p.name for p in scratch.iterdir() if p.name.startswith("hub-")] == []


def test_ids_beyond_the_store_are_404(client: TestClient, operator: dict[str, str]) -> None:
    answer = client.get(f"/api/v1/batches/{2**70}", headers=operator)
    assert answer.status_code == 404
