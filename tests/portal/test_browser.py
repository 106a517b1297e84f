"""End to end in headless Chromium: the operator's round trip, the verifikator's approval, the
delivery reaching the SIAK sandbox, and a refusal; screenshots of every page at 1280 and 360 px.

One server and one browser for the module; the tests run in order (the second uses what the
first stored).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_xlsx
from tests.conftest import MANY_PROCESSES
from tests.portal.browser import launched, shoot
from tests.portal.conftest import PASSWORD, fixed_xlsx, messy_xlsx
from tests.portal.server import Served, serve

pytestmark = [pytest.mark.browser, MANY_PROCESSES]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RED = "FFC7CE"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched() as browser:
        yield browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("files")
    return {
        "messy": messy_xlsx(directory / "lahir juli.xlsx"),
        "fixed": fixed_xlsx(directory / "lahir juli perbaikan.xlsx"),
        # other births (mothers Dukcapil does not know), for the test that runs on its own
        "other": write_xlsx(
            directory / "lahir agustus.xlsx",
            KELAHIRAN_HEADER,
            [kelahiran_row(21), kelahiran_row(22), kelahiran_row(23, **{"NIK Ibu": "32730145079"})],
        ),
    }


@pytest.fixture
def pages(chromium: Any, served: Served) -> Iterator[Any]:
    """`pages()` -> a new page in a browser context of its own (its own cookies)."""
    opened: list[Any] = []

    def open_page(language: str = "id-ID") -> Any:
        page = new_page(chromium, served, language)
        opened.append(page.context)
        return page

    yield open_page
    for context in opened:
        context.close()


def new_page(chromium: Any, served: Served, language: str = "id-ID") -> Any:
    context = chromium.new_context(
        base_url=served.url, viewport={"width": 1280, "height": 800}, locale=language,
        accept_downloads=True,
    )  # fmt: skip
    context.set_default_timeout(15_000)
    return context.new_page()


def log_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/masuk")
    page.get_by_label("Nama pengguna").fill(username)
    page.get_by_label("Kata sandi").fill(password)
    page.get_by_role("button", name="Masuk").click()


def drop_file(page: Any, path: Path) -> None:
    """Drag and drop `path` onto the upload zone, as a person does from the file manager."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([data, name, type]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type}));
            return transfer;
        }""",
        [data, path.name, XLSX],
    )
    page.dispatch_event("#zona", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#zona", "drop", {"dataTransfer": transfer})


def counts(page: Any) -> dict[str, int]:
    return {
        key: int(page.locator(f"#n-{key}").inner_text())
        for key in ("rows", "valid", "invalid", "duplicates", "warnings", "corrected")
    }


def test_operator_uploads_fixes_and_the_verifikator_approves_to_siak(
    pages: Any, served: Served, files: dict[str, Path], tmp_path: Path
) -> None:
    operator = pages()
    # Masuk: a wrong password first, then the right one
    log_in(operator, "siti.op", "bukan-ini-sandinya")
    assert "Nama pengguna atau kata sandi salah" in operator.locator("#pesan-masuk").inner_text()
    shoot(operator, "masuk")
    log_in(operator, "siti.op")
    operator.wait_for_url("**/unggah")

    # Unggah laporan: the messy workbook dropped onto the zone, progress, then the result
    operator.get_by_label("Jenis laporan").select_option("kelahiran")
    drop_file(operator, files["messy"])
    assert "lahir juli.xlsx" in operator.locator("#zona-teks").inner_text()
    shoot(operator, "unggah")
    operator.get_by_role("button", name="Unggah").click()
    operator.wait_for_url(re.compile(r"/hasil/\d+$"))
    first = int(operator.url.rsplit("/", 1)[1])

    # Hasil unggahan: counts and the rejected rows with the operator's own column names
    assert counts(operator) == {"rows": 5, "valid": 2, "invalid": 3, "duplicates": 0,
                                "warnings": 0, "corrected": 0}  # fmt: skip
    problems = operator.locator("#masalah tbody tr")
    seen = [problems.nth(i).locator("td").all_inner_texts() for i in range(problems.count())]
    assert [(r[0], r[2], r[5]) for r in seen] == [
        ("4", "NIK Ibu", "nik_format"), ("5", "Tgl Lahir", "date_invalid"),
        ("6", "Nama Ibu", "required"),
    ]  # fmt: skip
    assert "NIK ibu tidak valid" in seen[0][4]
    shoot(operator, "hasil")
    operator.get_by_label("Saring menurut kode").select_option("date_invalid")
    operator.get_by_role("button", name="Terapkan").click()
    assert operator.locator("#masalah tbody tr").count() == 1

    # the annotated workbook: the bad cells highlighted red and explained
    with operator.expect_download() as download:
        operator.locator("#unduh").click()
    saved = tmp_path / "hasil.xlsx"
    download.value.save_as(saved)
    sheet = load_workbook(saved)["Juli"]
    header = [cell.value for cell in sheet[2]]
    for row, column in ((4, "NIK Ibu"), (5, "Tgl Lahir"), (6, "Nama Ibu")):
        cell = sheet.cell(row=row, column=header.index(column) + 1)
        assert cell.fill.fgColor.rgb.endswith(RED), (row, column)
        assert cell.comment is not None
        assert cell.comment.text.strip()
    good = sheet.cell(row=3, column=header.index("NIK Ibu") + 1)
    assert not (good.fill.fgColor.rgb or "").endswith(RED)

    # the verifikator's queue, open while the operator corrects the file
    verifikator = pages()
    log_in(verifikator, "dewi.ver")
    verifikator.wait_for_url("**/persetujuan")
    rows = verifikator.locator("#baris-antrean tr[data-id]")
    rows.nth(1).wait_for()  # the two accepted births, once Dukcapil has answered
    assert "Dukcapil: ditemukan (00)" in verifikator.locator("#antrean").inner_text()

    # Unggah ulang: the corrected file; only new rows are processed
    operator.locator("#unggah-ulang").click()
    operator.wait_for_url(f"**/hasil/{first}/unggah-ulang")
    operator.get_by_label("Berkas laporan").set_input_files(files["fixed"])
    shoot(operator, "unggah-ulang")
    operator.get_by_role("button", name="Unggah").click()
    operator.wait_for_url(re.compile(rf"/hasil/\d+\?sebelumnya={first}$"))
    assert counts(operator) == {"rows": 5, "valid": 3, "invalid": 0, "duplicates": 2,
                                "warnings": 2, "corrected": 0}  # fmt: skip
    changes = operator.locator("#perubahan").inner_text()
    assert "2 baris sudah diterima sebelumnya (tidak diproses ulang)" in changes
    assert "3 baris baru diterima" in changes
    assert "Sebelumnya: 3 baris ditolak dari 5." in changes
    shoot(operator, "hasil-ulang")

    # Persetujuan: the three new births appear live, with a notification
    notice = verifikator.locator("#pemberitahuan")
    notice.wait_for(state="visible")
    rows.nth(4).wait_for()
    assert rows.count() == 5
    assert "data baru menunggu persetujuan" in notice.inner_text()
    shoot(verifikator, "persetujuan")
    verifikator.get_by_label("Pilih semua").check()
    verifikator.get_by_role("button", name="Setujui yang dipilih").click()
    verifikator.wait_for_url("**/persetujuan?disetujui=5*")
    assert (
        "5 disetujui, 0 ditolak, 0 dilewati."
        in verifikator.locator("#hasil-keputusan").inner_text()
    )

    # the deliveries reach the SIAK simulator's ledger
    deadline = time.monotonic() + 20
    while served.sandbox.siak_stats()["effects"] < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = served.sandbox.siak_stats()
    assert stats["effects"] == 5
    assert stats["identities_applied_more_than_once"] == 0


def test_refusals_and_the_other_pages(pages: Any, files: dict[str, Path]) -> None:
    """Independent of the test above (pytest-randomly and xdist may reorder or split them)."""
    owner = pages()
    log_in(owner, "siti.op")
    owner.wait_for_url("**/unggah")
    owner.get_by_label("Jenis laporan").select_option("kelahiran")
    owner.get_by_label("Berkas laporan").set_input_files(files["other"])
    owner.get_by_role("button", name="Unggah").click()
    owner.wait_for_url(re.compile(r"/hasil/\d+"))
    batch = owner.url.rsplit("/", 1)[1].split("?")[0]

    # an operator of another kelurahan cannot open siti's batch
    other = pages()
    log_in(other, "andi.op")
    other.wait_for_url("**/unggah")
    answer = other.goto(f"/hasil/{batch}")
    assert answer.status == 403
    assert "Akses ditolak" in other.locator("h1").inner_text()
    assert "32730145079" not in other.content()
    shoot(other, "403")
    # keyboard only: the skip link comes first and leads to the content
    other.goto("/unggah")
    other.keyboard.press("Tab")
    assert other.evaluate("document.activeElement.className") == "skip"
    other.keyboard.press("Enter")
    assert other.evaluate("document.activeElement.id") == "isi"

    admin = pages()
    log_in(admin, "admin.kota")
    admin.goto("/pengiriman")
    connectors = admin.locator("#konektor tbody tr")
    assert [connectors.nth(i).get_attribute("data-connector") for i in range(2)] == [
        "dukcapil",
        "siak",
    ]
    shoot(admin, "pengiriman")
    admin.goto("/statistik")
    admin.get_by_role("link", name=re.compile("Sukasari")).first.click()
    admin.wait_for_url("**/statistik?wilayah=32.73.01*")
    assert int(admin.locator("#total").inner_text()) >= 2
    assert admin.locator("#bulan svg rect.bar").count() >= 1
    shoot(admin, "statistik")

    auditor = pages("en-US")
    log_in_en(auditor, "audit.pusat")
    auditor.goto("/audit")
    auditor.get_by_label("User").fill("siti.op")
    auditor.get_by_role("button", name="Search").click()
    assert "batch.uploaded" in auditor.locator("#kejadian").inner_text()
    assert auditor.locator("html").get_attribute("lang") == "en"
    shoot(auditor, "audit")


def log_in_en(page: Any, username: str) -> None:
    page.goto("/masuk")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/statistik")
