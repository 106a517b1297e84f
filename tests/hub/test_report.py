"""The operator's validation report: xlsx marked up, csv and json issue lists."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet._writer import ALL_TEMP_FILES
from openpyxl.worksheet.worksheet import Worksheet

from hub.errors import ConfigError
from hub.records import CellValue, Issue, Provenance, RawRow
from hub.report import csv_safe, write_report

SUMMARY: dict[str, Any] = {
    "file": "lahir_juli.xlsx",
    "type": "kelahiran",
    "rows": 3,
    "valid": 1,
    "invalid": 2,
    "duplicates": 0,
    "warnings": 1,
}
HEADER: tuple[CellValue, ...] = ("No", "Nama Anak", "Tgl Lahir", "NIK Ibu", "BB", "Catatan")
DDE = "=cmd|' /C calc'!A0"
RISKY = (DDE, "+SUM(A1)", "@x", "-1+2")
ERROR_RGB = "00FFC7CE"
WARNING_RGB = "00FFEB9C"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A naive datetime, as spreadsheets hold them."""
    return dt.datetime.combine(dt.date(year, month, day), dt.time(hour, minute))


def raw(row: int, *cells: CellValue, part: str = "Juli", source: str = "excel") -> RawRow:
    return RawRow(cells, Provenance(source, "lahir_juli.xlsx", row, part=part))


def issue(row: int, col: int | None, severity: str = "error", **kw: Any) -> Issue:
    column = HEADER[col] if col is not None and col < len(HEADER) else None
    values: dict[str, Any] = {
        "row": row,
        "column": column,
        "field": "nik_ibu",
        "code": "nik_length",
        "severity": severity,
        "message": "NIK harus 16 digit.",
        "value": None,
        "sheet": "Juli",
        "col": col,
    }
    values.update(kw)
    return Issue(**values)


def source_rows() -> list[RawRow]:
    """A title row, a blank row 2, the header at 3, data from row 4 with a gap at row 6."""
    return [
        raw(1, "LAPORAN KELAHIRAN BULAN JULI 2025"),
        raw(3, *HEADER),
        raw(4, 1, "Aisyah", local(2025, 7, 2), "3273014207250001", 3200, DDE),
        raw(5, 2, "Budi", dt.date(2025, 7, 3), "32730142", -5, "+SUM(A1)"),
        raw(7, 3, "Citra", "17/08/2025", 3273014207250002, None, "@x", "-1+2"),
    ]


def issues() -> list[Issue]:
    # deliberately out of order
    return [
        issue(7, 4, "warning", field="berat_bayi", code="missing", message="BB kosong."),
        issue(5, 3, message="NIK harus 16 digit.", value="32730142"),
        issue(5, 3, "warning", code="nik_region", message="Kode wilayah NIK tidak dikenal."),
        issue(4, 2, "warning", field="tanggal_lahir", code="nik_date", message="Tanggal beda."),
        issue(5, None, field=None, code="duplicate", message="Data ganda dengan baris 4."),
        issue(5, 5, field="catatan", code="x", message="Catatan aneh.", value=DDE),
    ]


@pytest.fixture
def xlsx(tmp_path: Path) -> Path:
    out = tmp_path / "hasil.xlsx"
    write_report(out, issues(), source_rows=source_rows(), summary=SUMMARY)
    return out


def sheet_xml(path: Path, title: str) -> str:
    """The raw XML of the worksheet called `title`."""
    with zipfile.ZipFile(path) as zf:
        workbook = zf.read("xl/workbook.xml").decode()
        rels = zf.read("xl/_rels/workbook.xml.rels").decode()
        rid = re.search(rf'<sheet[^>]*name="{re.escape(title)}"[^>]*r:id="(\w+)"', workbook)
        assert rid is not None
        target = re.search(rf'Id="{rid.group(1)}"[^>]*Target="([^"]+)"', rels) or re.search(
            rf'Target="([^"]+)"[^>]*Id="{rid.group(1)}"', rels
        )
        assert target is not None
        return zf.read("xl/" + target.group(1).lstrip("/").removeprefix("xl/")).decode()


def open_sheet(path: Path, title: str) -> Worksheet:
    ws = load_workbook(path)[title]
    assert isinstance(ws, Worksheet)
    return ws


# --- xlsx -----------------------------------------------------------------------------------


def test_xlsx_sheets_in_order(xlsx: Path) -> None:
    assert load_workbook(xlsx).sheetnames == ["Ringkasan", "Juli", "Kesalahan"]


def test_xlsx_values_at_original_positions(xlsx: Path) -> None:
    ws = open_sheet(xlsx, "Juli")
    assert ws["A1"].value == "LAPORAN KELAHIRAN BULAN JULI 2025"
    assert all(cell.value is None for cell in ws[2])
    assert [c.value for c in ws[3]] == [*HEADER, None]  # row 7 is one cell wider
    assert ws["B4"].value == "Aisyah"
    assert ws["C4"].value == local(2025, 7, 2)
    assert ws["C4"].number_format == "dd/mm/yyyy"
    assert ws["C5"].value == local(2025, 7, 3)  # openpyxl reads dates back as datetimes
    assert ws["C5"].number_format == "dd/mm/yyyy"
    assert ws["D4"].value == "3273014207250001"
    assert ws["D4"].data_type == "s"
    assert ws["E4"].value == 3200
    assert ws["A4"].data_type == "n"
    assert all(cell.value is None for cell in ws[6])
    assert ws["B7"].value == "Citra"
    assert ws["C7"].value == "17/08/2025"  # text stays text
    assert ws["D7"].value == 3273014207250002
    assert ws["D7"].number_format == "0"  # a NIK typed as a number is shown in full
    assert ws.max_row == 7


def test_xlsx_real_negative_number_stays_numeric(xlsx: Path) -> None:
    cell = open_sheet(xlsx, "Juli")["E5"]
    assert cell.value == -5
    assert cell.data_type == "n"


def test_xlsx_formula_like_text_stays_text(xlsx: Path) -> None:
    ws = open_sheet(xlsx, "Juli")
    for coordinate, text in (("F4", DDE), ("F5", "+SUM(A1)"), ("F7", "@x"), ("G7", "-1+2")):
        assert ws[coordinate].value == text
        assert ws[coordinate].data_type == "s"
        assert ws[coordinate].quotePrefix  # editing the cell in Excel keeps it text
    for title in ("Juli", "Kesalahan", "Ringkasan"):
        assert "<f>" not in sheet_xml(xlsx, title)
        assert "<f " not in sheet_xml(xlsx, title)


def test_xlsx_fills_error_over_warning(xlsx: Path) -> None:
    ws = open_sheet(xlsx, "Juli")
    assert ws["D5"].fill.fgColor.rgb == ERROR_RGB  # error and warning on one cell
    assert ws["F5"].fill.fgColor.rgb == ERROR_RGB
    assert ws["C4"].fill.fgColor.rgb == WARNING_RGB
    assert ws["E7"].fill.fgColor.rgb == WARNING_RGB  # empty cell, issue still shown
    assert ws["B5"].fill.fill_type is None
    assert ws["D4"].fill.fill_type is None


def test_xlsx_comments_list_every_message(xlsx: Path) -> None:
    ws = open_sheet(xlsx, "Juli")
    comment = ws["D5"].comment
    assert comment is not None
    assert comment.author == "LAMPID Hub"
    assert comment.text.splitlines() == [
        "Kesalahan: NIK harus 16 digit.",
        "Peringatan: Kode wilayah NIK tidak dikenal.",
    ]
    assert ws["C4"].comment is not None
    assert ws["C4"].comment.text == "Peringatan: Tanggal beda."
    assert ws["B5"].comment is None


def test_xlsx_row_level_issue_marks_first_cell(xlsx: Path) -> None:
    cell = open_sheet(xlsx, "Juli")["A5"]
    assert cell.value == 2
    assert cell.fill.fgColor.rgb == ERROR_RGB
    assert cell.comment is not None
    assert cell.comment.text == "Kesalahan (seluruh baris): Data ganda dengan baris 4."


def test_xlsx_issue_sheet(xlsx: Path) -> None:
    ws = open_sheet(xlsx, "Kesalahan")
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == ["Lembar", "Baris", "Kolom", "Field", "Kode", "Tingkat", "Pesan", "Nilai"]
    assert all(cell.font.bold for cell in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:H7"
    assert [row[:6] for row in rows[1:]] == [
        ["Juli", 4, "C (Tgl Lahir)", "tanggal_lahir", "nik_date", "Peringatan"],
        ["Juli", 5, "(seluruh baris)", None, "duplicate", "Kesalahan"],
        ["Juli", 5, "D (NIK Ibu)", "nik_ibu", "nik_length", "Kesalahan"],
        ["Juli", 5, "D (NIK Ibu)", "nik_ibu", "nik_region", "Peringatan"],
        ["Juli", 5, "F (Catatan)", "catatan", "x", "Kesalahan"],
        ["Juli", 7, "E (BB)", "berat_bayi", "missing", "Peringatan"],
    ]
    assert [row[6:] for row in rows[1:]] == [
        ["Tanggal beda.", None],
        ["Data ganda dengan baris 4.", None],
        ["NIK harus 16 digit.", "32730142"],
        ["Kode wilayah NIK tidak dikenal.", None],
        ["Catatan aneh.", DDE],
        ["BB kosong.", None],
    ]
    assert ws["H6"].data_type == "s"
    assert ws["F2"].fill.fgColor.rgb == WARNING_RGB
    assert ws["F3"].fill.fgColor.rgb == ERROR_RGB
    link = ws["B4"].hyperlink
    assert link is not None
    assert link.location == "'Juli'!D5"


def test_xlsx_summary_sheet(xlsx: Path) -> None:
    ws = open_sheet(xlsx, "Ringkasan")
    pairs = {row[0].value: row[1].value for row in ws.iter_rows(min_row=3, max_col=2)}
    assert pairs["Berkas"] == "lahir_juli.xlsx"
    assert pairs["Total baris"] == 3
    assert pairs["Diterima"] == 1
    assert pairs["Ditolak"] == 2
    assert pairs["Duplikat"] == 0
    assert pairs["Baris dengan peringatan"] == 1
    assert pairs["Jumlah pesan kesalahan"] == 3
    assert pairs["Jumlah pesan peringatan"] == 3


def test_xlsx_from_csv_source_uses_data_sheet(tmp_path: Path) -> None:
    rows = [
        raw(1, "Nama", "Nilai", part="", source="csv"),
        raw(2, "Ani", "-1", part="", source="csv"),
    ]
    found = [issue(2, 1, sheet="", value="-1")]
    out = tmp_path / "hasil.xlsx"
    write_report(out, found, source_rows=rows, summary=SUMMARY)
    assert load_workbook(out).sheetnames == ["Ringkasan", "Data", "Kesalahan"]
    ws = open_sheet(out, "Data")
    assert ws["B2"].value == "-1"
    assert ws["B2"].data_type == "s"
    assert ws["B2"].fill.fgColor.rgb == ERROR_RGB
    header = [c.value for c in open_sheet(out, "Kesalahan")[1]]
    assert header == ["Baris", "Kolom", "Field", "Kode", "Tingkat", "Pesan", "Nilai"]


def test_xlsx_issue_on_row_outside_source(tmp_path: Path) -> None:
    """Issues on a blank row inside or after the data are still shown in place."""
    rows = [raw(1, "a"), raw(3, "b")]
    found = [issue(2, 1, message="Baris kosong di tengah."), issue(9, None, message="Akhir.")]
    out = tmp_path / "hasil.xlsx"
    write_report(out, found, source_rows=rows, summary={})
    ws = open_sheet(out, "Juli")
    assert ws["B2"].fill.fgColor.rgb == ERROR_RGB
    assert ws["A9"].comment is not None
    assert ws["A3"].value == "b"


def test_xlsx_several_sheets_and_clashing_names(tmp_path: Path) -> None:
    rows = [
        raw(1, "a", part="Kesalahan"),
        raw(1, "b", part="Agustus"),
        raw(2, "c", part="Kesalahan"),
    ]
    found = [issue(2, 0, sheet="Kesalahan"), issue(1, 0, sheet="Agustus", severity="warning")]
    out = tmp_path / "hasil.xlsx"
    write_report(out, found, source_rows=rows, summary=SUMMARY)
    assert load_workbook(out).sheetnames == ["Ringkasan", "Kesalahan", "Agustus", "Kesalahan (2)"]
    assert open_sheet(out, "Kesalahan")["A2"].fill.fgColor.rgb == ERROR_RGB
    assert open_sheet(out, "Agustus")["A1"].fill.fgColor.rgb == WARNING_RGB
    listed = [[c.value for c in row][:2] for row in open_sheet(out, "Kesalahan (2)").iter_rows()]
    assert listed[1:] == [["Kesalahan", 2], ["Agustus", 1]]  # in the order of the source


def test_xlsx_odd_values(tmp_path: Path) -> None:
    rows = [
        raw(1, "a\x00b", "#N/A", float("nan"), dt.time(8, 30), True, local(2025, 7, 2, 8, 30)),
    ]
    out = tmp_path / "hasil.xlsx"
    write_report(out, [], source_rows=rows, summary=SUMMARY)
    ws = open_sheet(out, "Juli")
    assert ws["A1"].value == "ab"
    assert (ws["B1"].value, ws["B1"].data_type) == ("#N/A", "s")
    assert ws["C1"].value == "nan"
    assert ws["D1"].value == dt.time(8, 30)
    assert ws["E1"].value is True
    assert ws["F1"].number_format == "dd/mm/yyyy hh:mm"


def test_xlsx_without_issues_or_rows(tmp_path: Path) -> None:
    out = tmp_path / "hasil.xlsx"
    write_report(out, [], source_rows=source_rows(), summary=SUMMARY)
    assert open_sheet(out, "Juli")["B4"].value == "Aisyah"
    assert [[c.value for c in row] for row in open_sheet(out, "Kesalahan").iter_rows()] == [
        ["Baris", "Kolom", "Field", "Kode", "Tingkat", "Pesan", "Nilai"]
    ]
    out2 = tmp_path / "tanpa_baris.xlsx"
    write_report(out2, issues(), source_rows=None, summary=SUMMARY)
    assert load_workbook(out2).sheetnames == ["Ringkasan", "Kesalahan"]
    assert open_sheet(out2, "Kesalahan").max_row == 7


# --- csv ------------------------------------------------------------------------------------


def test_csv_safe() -> None:
    assert [csv_safe(t) for t in RISKY] == [f"'{t}" for t in RISKY]
    assert csv_safe("\tx") == "'\tx"
    assert csv_safe("\rx") == "'\rx"
    assert csv_safe("Aisyah") == "Aisyah"
    assert csv_safe(None) == ""


def test_csv_report(tmp_path: Path) -> None:
    out = tmp_path / "hasil.csv"
    found = [*issues(), issue(8, 1, value="+SUM(A1)", message="@x"), issue(8, 2, value="-1+2")]
    write_report(out, found, source_rows=None, summary=SUMMARY)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[0] == ["baris", "sheet", "kolom", "field", "kode", "tingkat", "pesan", "nilai"]
    assert rows[1][:5] == ["4", "Juli", "C (Tgl Lahir)", "tanggal_lahir", "nik_date"]
    assert rows[1][5:] == ["Peringatan", "Tanggal beda.", ""]
    assert rows[2][2:6] == ["(seluruh baris)", "", "duplicate", "Kesalahan"]
    assert rows[5][7] == f"'{DDE}"
    assert rows[7][6:] == ["'@x", "'+SUM(A1)"]
    assert rows[8][7] == "'-1+2"
    assert len(rows) == 1 + len(found)


def test_csv_empty(tmp_path: Path) -> None:
    out = tmp_path / "hasil.csv"
    write_report(out, [], source_rows=None, summary=SUMMARY)
    assert out.read_bytes() == b"\xef\xbb\xbfbaris;sheet;kolom;field;kode;tingkat;pesan;nilai\r\n"


# --- json -----------------------------------------------------------------------------------


def test_json_report(tmp_path: Path) -> None:
    out = tmp_path / "hasil.json"
    found = [*issues(), issue(9, 1, message="Nama berisi karakter é ✓")]
    write_report(out, found, source_rows=source_rows(), summary={**SUMMARY, "issues": "x"})
    text = out.read_text(encoding="utf-8")
    assert "é ✓" in text
    data = json.loads(text)
    assert {k: v for k, v in data.items() if k != "issues"} == SUMMARY
    assert len(data["issues"]) == len(found)
    assert data["issues"][0] == issues()[3].as_dict()  # sorted by row
    assert {json.dumps(i, sort_keys=True) for i in data["issues"]} == {
        json.dumps(i.as_dict(), sort_keys=True) for i in found
    }


def test_json_empty(tmp_path: Path) -> None:
    out = tmp_path / "hasil.json"
    write_report(out, iter(()), source_rows=None, summary=SUMMARY)
    assert json.loads(out.read_text(encoding="utf-8")) == {**SUMMARY, "issues": []}


# --- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hasil.pdf", "hasil", "hasil.xls", "hasil.txt"])
def test_unknown_suffix(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"\.xlsx, \.csv, atau \.json"):
        write_report(tmp_path / name, [], source_rows=None, summary=SUMMARY)
    assert list(tmp_path.iterdir()) == []


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    out = tmp_path / "HASIL.JSON"
    write_report(out, [], source_rows=None, summary=SUMMARY)
    assert json.loads(out.read_text(encoding="utf-8"))["issues"] == []


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    def broken_rows() -> Any:
        yield raw(1, "a")
        raise RuntimeError("boom")

    out = tmp_path / "hasil.xlsx"
    temp_files = list(ALL_TEMP_FILES)  # openpyxl's streaming files of write-only sheets
    with pytest.raises(RuntimeError):
        write_report(out, [], source_rows=broken_rows(), summary=SUMMARY)
    assert list(tmp_path.iterdir()) == []
    assert ALL_TEMP_FILES == temp_files


def test_xlsx_merged_cells_of_the_source_stay_merged(tmp_path: Path) -> None:
    """A title merged over the table and a group label over two columns come back merged,
    their text in the first cell only, not copied into every cell they cover."""
    from openpyxl import Workbook

    from hub.pipeline import source_for

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Juli"
    ws.append(["LAPORAN KEDATANGAN JULI 2025"])
    ws.append(["NIK", "DAERAH ASAL", None, "Tgl Datang"])
    ws.append([None, "Kode", "Alamat", None])
    ws.append(["3273010101900001", "32.73.02.1001", "Cipaganti", "01/07/2025"])
    for cells in ("A1:D1", "B2:C2", "A2:A3", "D2:D3"):
        ws.merge_cells(cells)
    path = tmp_path / "datang.xlsx"
    wb.save(path)
    source = source_for(path)
    out = tmp_path / "hasil.xlsx"

    write_report(out, [], source_rows=source.read(), summary=SUMMARY, merged=source.merged_ranges())

    sheet = load_workbook(out)["Juli"]
    assert {str(r) for r in sheet.merged_cells.ranges} == {"A1:D1", "B2:C2", "A2:A3", "D2:D3"}
    assert [c.value for c in sheet[1]] == ["LAPORAN KEDATANGAN JULI 2025", None, None, None]
    assert [c.value for c in sheet[2]] == ["NIK", "DAERAH ASAL", None, "Tgl Datang"]
    assert [c.value for c in sheet[3]] == [None, "Kode", "Alamat", None]
    assert sheet["C4"].value == "Cipaganti"


def test_xlsx_a_merged_range_with_an_issue_inside_is_not_merged(tmp_path: Path) -> None:
    """An issue on a covered cell (the lower row of a header merged over two rows) must stay
    visible: that range is written unmerged, its value in each cell."""
    rows = [raw(1, "NIK", "Catatan"), raw(2, "NIK", "Catatan"), raw(3, "3273", "x")]
    merged = {"Juli": [(1, 0, 2, 0), (1, 1, 2, 1)]}
    found = [issue(2, 1, severity="warning", message="Kolom tidak dikenali.")]
    out = tmp_path / "hasil.xlsx"

    write_report(out, found, source_rows=rows, summary=SUMMARY, merged=merged)

    sheet = load_workbook(out)["Juli"]
    assert {str(r) for r in sheet.merged_cells.ranges} == {"A1:A2"}
    assert (sheet["A2"].value, sheet["B2"].value) == (None, "Catatan")
    assert sheet["B2"].comment is not None


def test_xlsx_a_merged_range_over_a_million_rows_costs_nothing_per_row(tmp_path: Path) -> None:
    """A range declared over the whole sheet is swept with the rows, not expanded."""
    rows = [raw(1, "Catatan", "x"), raw(2, "", "y")]
    merged = {"Juli": [(1, 0, 1_048_576, 0)]}
    out = tmp_path / "hasil.xlsx"

    write_report(out, [], source_rows=rows, summary=SUMMARY, merged=merged)

    # read back as XML: openpyxl's reader would make a cell object for each covered cell
    with zipfile.ZipFile(out) as archive:
        names = [n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
        sheets = [archive.read(n).decode() for n in names]
    merges = [re.findall(r'<mergeCell ref="([A-Z0-9:]+)"', xml) for xml in sheets]
    assert [found for found in merges if found] == [["A1:A1048576"]]
