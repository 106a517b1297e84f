"""Hostile upload names and multipart bodies through `POST /api/v1/batches`."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from hub.context import Hub
from hub.store.tables import batches
from tests.api.conftest import Headers
from tests.api.test_batches import report_file, upload, wait_done
from tests.hostile.files import handmade_xlsx, sheet_xml

KELURAHAN = "32.73.01.1001"


@pytest.fixture
def operator(auth: Headers) -> dict[str, str]:
    return auth("operator", KELURAHAN)


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("..\\..\\Windows\\system32\\lahir.csv", "lahir.csv"),
        ("lahir\x00.csv", "lahir_00.csv"),  # the client sends NUL as %00
        ("..", "laporan"),
        ("...", "laporan"),
        ("laporan juli;rm -rf ~.csv", "laporan juli_rm -rf _.csv"),
        ("ø" * 300 + ".csv", "ø" * 60),  # 120 bytes of UTF-8: was a 500 (name too long)
        ("嬰" * 300 + ".csv", "嬰" * 40),
    ],
)
def test_upload_names_are_reduced_to_a_safe_base_name(
    client: TestClient,
    operator: dict[str, str],
    auth: Headers,
    tmp_path: Path,
    name: str,
    stored: str,
) -> None:
    answer = upload(client, operator, report_file(tmp_path).read_bytes(), name)
    assert answer.status_code == 202, answer.text
    done = wait_done(client, answer.json()["status_url"], operator)
    assert done["status"] == "done", done
    assert done["file"] == stored
    assert not set(done["file"]) & {"/", "\\", "\x00"}
    report = client.get(done["report_url"], headers=auth("admin", "32.73", ["pii:read"]))
    assert report.status_code == 200, report.text


def test_far_apart_cells_are_refused_at_upload(
    client: TestClient, operator: dict[str, str], tmp_path: Path, routed_hub: Hub
) -> None:
    rows = '<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c r="XFD1048576"><v>2</v></c></row>'
    path = handmade_xlsx(tmp_path / "jauh.xlsx", sheet=sheet_xml(rows))
    answer = upload(client, operator, path.read_bytes(), "jauh.xlsx")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "unreadable_file"
    with routed_hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one() == 0


def _multipart(boundary: str, *parts: tuple[str, bytes]) -> bytes:
    body = b""
    for disposition, content in parts:
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def test_multipart_limits_and_malformed_bodies(
    client: TestClient, operator: dict[str, str], tmp_path: Path
) -> None:
    content = report_file(tmp_path).read_bytes()
    file_part = ('form-data; name="file"; filename="lahir.csv"', content)
    type_part = ('form-data; name="type"', b"kelahiran")

    def post(body: bytes, boundary: str = "b0undary") -> int:
        headers = {**operator, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        answer = client.post("/api/v1/batches", content=body, headers=headers)
        assert answer.headers["content-type"] == "application/json"
        assert "Traceback" not in answer.text
        return answer.status_code

    huge_field = ('form-data; name="kelurahan"', b"3" * (65 * 1024))
    assert post(_multipart("b0undary", file_part, type_part, huge_field)) == 400
    many = [(f'form-data; name="f{i}"', b"x") for i in range(20)]
    assert post(_multipart("b0undary", file_part, type_part, *many)) == 400
    two_files = ('form-data; name="file2"; filename="b.csv"', content)
    assert post(_multipart("b0undary", file_part, two_files, type_part)) == 400
    assert post(b'--b0undary\r\nContent-Disposition: form-data; name="type"\r\n\r\nkel') in (
        400,
        422,
    )
    assert post(b"not multipart at all", boundary="") in (400, 422)
    assert post(_multipart("b0undary", file_part, type_part), boundary="other") in (400, 422)
    bad_utf8 = ('form-data; name="type"', b"kelahiran\xff\xfe")
    assert post(_multipart("b0undary", file_part, bad_utf8)) in (400, 422)
