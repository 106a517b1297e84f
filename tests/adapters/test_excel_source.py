"""ExcelSource: typed cells, Excel positions, sheets, merges, and every refused input."""

from __future__ import annotations

import datetime as dt
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import olefile  # type: ignore[import-untyped]
import pytest
import python_calamine
import xlwt
from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl import Workbook

from adapters.excel.source import ENCRYPTED_MESSAGE, ExcelSource, cfb_stream_names
from hub.errors import EncryptedFileError, UnreadableFileError
from hub.records import RawRow

NIK = 3273010101900001
BORN = dt.date(2025, 8, 17)
REGISTERED = dt.datetime(2025, 8, 18, 9, 30)  # noqa: DTZ001 - Excel datetimes are naive


def read(path: Path, **config: Any) -> list[RawRow]:
    return list(ExcelSource({"path": str(path), **config}).read())


def positions(rows: list[RawRow]) -> list[str]:
    return [row.provenance.position for row in rows]


def save(workbook: Workbook, path: Path) -> Path:
    workbook.save(path)
    return path


def births(path: Path) -> Path:
    """A typical report: two title rows, a blank row, header, data with a blank row inside."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Juli"
    sheet.append(["LAPORAN KELAHIRAN BULAN JULI 2025"])
    sheet.append(["KELURAHAN : SUKARASA"])
    sheet.append([])
    sheet.append(["NIK", "NAMA", "TGL LAHIR", "DICATAT", "RT", "HIDUP", "JAM"])
    sheet.append([NIK, "Budi", BORN, REGISTERED, 8.0, True, dt.time(10, 30)])
    sheet.append([])
    sheet.append(["3273010101900002", "Siti", "17/08/2025", None, "008", False, None])
    return save(workbook, path)


def test_cells_keep_their_types(tmp_path: Path) -> None:
    rows = read(births(tmp_path / "lahir.xlsx"))
    header, budi, siti = rows[2:]
    assert header.cells == ("NIK", "NAMA", "TGL LAHIR", "DICATAT", "RT", "HIDUP", "JAM")
    nik, name, born, registered, rt, alive, hour = budi.cells
    assert isinstance(nik, int | float)
    assert not isinstance(nik, bool)
    assert nik == NIK
    assert name == "Budi"
    assert type(born) is dt.date
    assert born == BORN
    assert isinstance(registered, dt.datetime)
    assert registered == REGISTERED
    assert rt == 8.0
    assert alive is True
    assert hour == dt.time(10, 30)
    assert siti.cells == ("3273010101900002", "Siti", "17/08/2025", None, "008", False, None)


def test_rows_are_excel_row_numbers(tmp_path: Path) -> None:
    rows = read(births(tmp_path / "lahir.xlsx"))
    assert positions(rows) == ["Juli!R1", "Juli!R2", "Juli!R4", "Juli!R5", "Juli!R7"]
    provenance = rows[0].provenance
    assert (provenance.source, provenance.locator, provenance.part) == (
        "excel",
        "lahir.xlsx",
        "Juli",
    )
    assert rows[0].cells == ("LAPORAN KELAHIRAN BULAN JULI 2025",) + (None,) * 6


def test_data_starting_at_row_5_column_c(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Data"
    sheet["C5"] = "NIK"
    sheet["D5"] = "NAMA"
    sheet["C6"] = NIK
    sheet["D6"] = "Budi"
    sheet["D8"] = "Siti"
    sheet["H30"].number_format = "0.00"  # formatted but empty: not data
    rows = read(save(workbook, tmp_path / "geser.xlsx"))
    assert positions(rows) == ["Data!R5", "Data!R6", "Data!R8"]
    assert rows[0].cells == (None, None, "NIK", "NAMA")  # cells[i] is column i (A = 0)
    assert rows[1].cells == (None, None, NIK, "Budi")
    assert rows[2].cells == (None, None, None, "Siti")


def sheets(path: Path) -> Path:
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Juli"
    first.append(["NIK", "NAMA"])
    first.append([NIK, "Budi"])
    hidden = workbook.create_sheet("Rahasia")
    hidden.append(["tersembunyi"])
    hidden.sheet_state = "hidden"
    workbook.create_sheet("Kosong")
    august = workbook.create_sheet("Agustus")
    august.append(["NIK", "NAMA"])
    august.append([NIK + 1, "Siti"])
    return save(workbook, path)


def test_every_visible_sheet_by_default(tmp_path: Path) -> None:
    rows = read(sheets(tmp_path / "lahir.xlsx"))
    assert positions(rows) == ["Juli!R1", "Juli!R2", "Agustus!R1", "Agustus!R2"]


@pytest.mark.parametrize(
    ("sheet", "part"),
    [
        ("Agustus", "Agustus"),
        (3, "Agustus"),
        ("3", "Agustus"),
        (1, "Rahasia"),
        ("Rahasia", "Rahasia"),
    ],
)
def test_sheet_option(tmp_path: Path, sheet: str | int, part: str) -> None:
    rows = read(sheets(tmp_path / "lahir.xlsx"), sheet=sheet)
    assert {row.provenance.part for row in rows} == {part}


def test_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError) as info:
        read(sheets(tmp_path / "lahir.xlsx"), sheet="Juni")
    assert str(info.value) == (
        "Lembar 'Juni' tidak ada di berkas lahir.xlsx. Lembar yang ada: 'Juli', 'Rahasia', "
        "'Kosong', 'Agustus'. Perbaiki pilihan lembar atau unggah berkas yang benar."
    )
    with pytest.raises(UnreadableFileError, match="Lembar 9 tidak ada"):
        read(sheets(tmp_path / "lahir.xlsx"), sheet=9)


def test_chosen_empty_sheet(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"^Lembar 'Kosong' di berkas lahir\.xlsx kosong"):
        read(sheets(tmp_path / "lahir.xlsx"), sheet="Kosong")


def test_merged_cells_take_the_top_left_value(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Juli"
    sheet["A1"] = "LAPORAN KELAHIRAN"
    sheet.merge_cells("A1:C1")
    sheet["A3"] = "NO"
    sheet.merge_cells("A3:A4")  # two-row header
    sheet["B3"] = "IDENTITAS"
    sheet.merge_cells("B3:C3")
    sheet["B4"] = "NIK"
    sheet["C4"] = "NAMA"
    sheet["A5"] = 1
    sheet["B5"] = NIK
    sheet["C5"] = "Budi"
    rows = read(save(workbook, tmp_path / "gabung.xlsx"))
    assert [row.cells for row in rows] == [
        ("LAPORAN KELAHIRAN", "LAPORAN KELAHIRAN", "LAPORAN KELAHIRAN"),
        ("NO", "IDENTITAS", "IDENTITAS"),
        ("NO", "NIK", "NAMA"),
        (1, NIK, "Budi"),
    ]
    assert positions(rows) == ["Juli!R1", "Juli!R3", "Juli!R4", "Juli!R5"]


def ods(path: Path) -> Path:
    """A minimal OpenDocument spreadsheet: mimetype, manifest and content."""
    table = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    text = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="{office}" '
        f'xmlns:table="{table}" xmlns:text="{text}" office:version="1.2"><office:body>'
        '<office:spreadsheet><table:table table:name="Lahir">'
        '<table:table-row><table:table-cell office:value-type="string"><text:p>LAPORAN'
        "</text:p></table:table-cell></table:table-row>"
        "<table:table-row><table:table-cell/></table:table-row>"
        '<table:table-row><table:table-cell office:value-type="float" '
        f'office:value="{NIK}"><text:p>{NIK}</text:p></table:table-cell>'
        '<table:table-cell office:value-type="date" office:date-value="2025-08-17">'
        "<text:p>17/08/2025</text:p></table:table-cell></table:table-row>"
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
        '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type='
        '"application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry '
        'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED
        )
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return path


def test_ods(tmp_path: Path) -> None:
    rows = read(ods(tmp_path / "lahir.ods"))
    assert positions(rows) == ["Lahir!R1", "Lahir!R3"]
    assert rows[1].cells == (NIK, BORN)


def test_xls(tmp_path: Path) -> None:
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Lahir")
    sheet.write(0, 0, "LAPORAN KELAHIRAN")
    sheet.write_merge(2, 2, 1, 2, "IDENTITAS")
    sheet.write(3, 1, NIK)
    sheet.write(3, 2, BORN, xlwt.easyxf(num_format_str="DD/MM/YYYY"))
    sheet.write(3, 3, "Désa")
    path = tmp_path / "lahir.xls"
    workbook.save(str(path))
    assert "Workbook" in (cfb_stream_names(path) or set())
    rows = read(path)
    assert positions(rows) == ["Lahir!R1", "Lahir!R3", "Lahir!R4"]
    assert rows[1].cells == (None, "IDENTITAS", "IDENTITAS", None)
    assert rows[2].cells == (None, NIK, BORN, "Désa")


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    path = births(tmp_path / "lahir.xlsx")
    shutil.copy(path, tmp_path / "lahir.xls")
    shutil.copy(path, tmp_path / "lahir.XLSX")
    expected = read(path)
    assert [r.cells for r in read(tmp_path / "lahir.xls")] == [r.cells for r in expected]
    assert [r.cells for r in read(tmp_path / "lahir.XLSX")] == [r.cells for r in expected]


# Refused inputs ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"^Berkas hilang\.xlsx tidak ditemukan\."):
        ExcelSource({"path": str(tmp_path / "hilang.xlsx")}).read()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "kosong.xlsx"
    path.write_bytes(b"")
    with pytest.raises(UnreadableFileError, match=r"^Berkas kosong\.xlsx kosong \(0 byte\)"):
        read(path)


def test_workbook_whose_sheets_are_all_empty(tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.create_sheet("Dua")
    sheet = workbook.active
    assert sheet is not None
    sheet["B2"] = "   "  # whitespace only: still blank
    path = save(workbook, tmp_path / "kosong.xlsx")
    with pytest.raises(UnreadableFileError, match=r"^Semua lembar kerja di berkas kosong\.xlsx"):
        read(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"\x89PNG\r\n\x1a\n" + bytes(64),
            r"^Berkas ini bukan lembar kerja Excel \(terdeteksi gambar PNG\)",
        ),
        (b"%PDF-1.7\n", r"^Berkas ini bukan lembar kerja Excel \(terdeteksi PDF\)"),
        (
            b"\xef\xbb\xbfNIK;NAMA\r\n1;Budi\r\n",
            r"^Berkas ini CSV \(teks\), bukan Excel\. Pilih format CSV",
        ),
        (b"<html><body><table><tr><td>1</td></tr></table>", r"^Berkas ini halaman HTML"),
        (b"catatan rapat\n", r"^Berkas ini teks biasa, bukan lembar kerja Excel"),
        (b"\x00\x01\x02\x03" * 10, r"^Format berkas x\.xlsx tidak dikenali"),
    ],
)
def test_renamed_files_are_refused(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "x.xlsx"
    path.write_bytes(data)
    with pytest.raises(UnreadableFileError, match=message):
        read(path)


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", "<document/>")
    with pytest.raises(UnreadableFileError, match=r"\(terdeteksi dokumen Word\)"):
        read(path)


def test_corrupt_zip(tmp_path: Path) -> None:
    path = births(tmp_path / "lahir.xlsx")
    path.write_bytes(path.read_bytes()[:2_000])
    with pytest.raises(
        UnreadableFileError, match=r"^Berkas Excel ini rusak \(arsip ZIP tidak utuh\)"
    ):
        read(path)


def _with_broken_sheet(tmp_path: Path, change: Callable[[bytes], bytes]) -> Path:
    """A copy of a valid workbook whose first worksheet's stored bytes are `change`d."""
    path = births(tmp_path / "lahir.xlsx")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytes(raw[start : start + info.compress_size])
    raw[start : start + info.compress_size] = change(data)
    path.write_bytes(bytes(raw))
    return path


def test_worksheet_data_that_does_not_inflate(tmp_path: Path) -> None:
    # Found by the reader fuzzer: zlib.error escaped the extent check as a traceback.
    path = _with_broken_sheet(tmp_path, lambda data: b"\x07" * len(data))
    with pytest.raises(UnreadableFileError, match=r"^Berkas Excel ini rusak \(isi arsip ZIP"):
        read(path)


def test_worksheet_flagged_as_encrypted(tmp_path: Path) -> None:
    path = births(tmp_path / "lahir.xlsx")
    raw = bytearray(path.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(path) as archive:
        raw[archive.getinfo(name.decode()).header_offset + 6] |= 0x01  # local header: encrypted
    at = raw.find(b"PK\x01\x02")
    while raw[at + 46 : at + 46 + len(name)] != name:  # its central directory entry
        at = raw.find(b"PK\x01\x02", at + 4)
    raw[at + 8] |= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(UnreadableFileError, match=r"^Berkas Excel ini rusak"):
        read(path)


def test_calamine_errors_are_mapped(tmp_path: Path) -> None:
    source = births(tmp_path / "asli.xlsx")
    path = tmp_path / "rusak.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as broken:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = b"<workbook><sheets><sheet name="  # cut short
            broken.writestr(item, data)
    with pytest.raises(
        UnreadableFileError, match=r"^Berkas rusak\.xlsx tidak dapat dibaca"
    ) as info:
        read(path)
    assert isinstance(info.value.__cause__, python_calamine.CalamineError)
    assert "\n" not in str(info.value)


def test_corrupt_ole2_file(tmp_path: Path) -> None:
    path = tmp_path / "rusak.xls"
    path.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(600))
    with pytest.raises(UnreadableFileError, match=r"^Berkas rusak\.xls tidak dapat dibaca"):
        read(path)


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An .xlsx-shaped ZIP whose sheet expands 1000 times, to 40 MB of zeros (40 KB on disk)."""
    path = tmp_path_factory.mktemp("bomb") / "bom.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            block = bytes(1 << 20)
            for _ in range(40):
                member.write(block)
    return path


def test_zip_bomb_is_refused_by_ratio(zip_bomb: Path) -> None:
    assert zip_bomb.stat().st_size < 100_000
    started = time.perf_counter()
    with pytest.raises(UnreadableFileError, match=r"kemungkinan zip bomb"):
        read(zip_bomb)
    assert time.perf_counter() - started < 2


def test_zip_bomb_is_refused_by_total_size(zip_bomb: Path, tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"kemungkinan zip bomb"):
        read(zip_bomb, max_compression_ratio=10_000, max_uncompressed_bytes=20_000_000)
    small = births(tmp_path / "lahir.xlsx")
    with pytest.raises(UnreadableFileError, match=r"kemungkinan zip bomb"):
        read(small, max_uncompressed_bytes=1_000)


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workbook really encrypted with a password (ECMA-376 agile), as Excel saves it."""
    folder = tmp_path_factory.mktemp("encrypted")
    plain = births(folder / "asli.xlsx")
    path = folder / "rahasia.xlsx"
    with plain.open("rb") as source, path.open("wb") as target:
        OOXMLFile(source).encrypt("Sandi123", target)
    return path


def test_password_protected_workbook(encrypted: Path) -> None:
    with pytest.raises(EncryptedFileError) as info:
        read(encrypted)
    assert (
        str(info.value)
        == ENCRYPTED_MESSAGE
        == (
            "Berkas Excel dilindungi kata sandi. Buka di Excel, hapus kata sandinya (File > Info > "
            "Lindungi Buku Kerja), simpan, lalu unggah ulang."
        )
    )


def test_cfb_directory_matches_olefile(encrypted: Path) -> None:
    with olefile.OleFileIO(str(encrypted)) as ole:
        expected = {part for entry in ole.listdir(streams=True, storages=True) for part in entry}
    names = cfb_stream_names(encrypted)
    assert names is not None
    assert {"EncryptedPackage", "EncryptionInfo"} <= names
    assert expected <= names
