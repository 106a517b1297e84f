"""XML entities, billion laughs, lying ZIP headers and far-apart cells inside .xlsx files:
each is refused with a clean `UnreadableFileError` (or read as plain text), in bounded time
and memory, never expanded, never a crash."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.excel.extent import MAX_COLUMNS, column_letters
from adapters.excel.source import ExcelSource
from hub.errors import UnreadableFileError
from tests.hostile.files import (
    LAUGHS,
    NS,
    XXE,
    forged_zip,
    handmade_xlsx,
    shared_strings_xml,
    sheet_xml,
    standard_parts,
    workbook_xml,
)


def cells(path: Path) -> list[tuple[object, ...]]:
    return [row.cells for row in ExcelSource({"path": str(path)}).read()]


def test_the_handmade_workbook_reads(tmp_path: Path) -> None:
    assert cells(handmade_xlsx(tmp_path / "biasa.xlsx")) == [("nama", "teks")]


PARTS = {
    "workbook": workbook_xml,
    "sheet": lambda doctype, entity: sheet_xml(doctype=doctype, entity=entity),
    "strings": shared_strings_xml,
}


@pytest.mark.parametrize("part", sorted(PARTS))
@pytest.mark.parametrize(("doctype", "entity"), [(XXE, "&xxe;"), (LAUGHS, "&lol9;")])
def test_entities_are_never_expanded(tmp_path: Path, part: str, doctype: str, entity: str) -> None:
    path = handmade_xlsx(tmp_path / "entitas.xlsx", **{part: PARTS[part](doctype, entity)})
    started = time.perf_counter()
    with pytest.raises(UnreadableFileError, match="tidak dapat dibaca sebagai Excel") as info:
        cells(path)
    assert time.perf_counter() - started < 2
    assert "root:" not in str(info.value)  # /etc/passwd never read
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_declared_but_unused_dtd_changes_nothing(tmp_path: Path, part: str) -> None:
    path = handmade_xlsx(tmp_path / "dtd.xlsx", **{part: PARTS[part](LAUGHS, "")})
    assert cells(path) == [("nama", "teks")]


def _rows(count: int) -> list[bytes]:
    head = f'<?xml version="1.0"?><worksheet {NS}><sheetData>'.encode()
    row = b'<row><c t="n"><v>1</v></c><c t="n"><v>2</v></c></row>'
    return [head, *([row] * count), b"</sheetData></worksheet>"]


def test_a_member_larger_than_its_headers_say_is_refused(tmp_path: Path) -> None:
    """40 MB of rows declared as 4 KB: the ratio check cannot see it, the read stops."""
    parts = {**standard_parts(), "xl/worksheets/sheet1.xml": _rows(800_000)}
    path = forged_zip(tmp_path / "bohong.xlsx", parts, {"xl/worksheets/sheet1.xml": 4000})
    assert path.stat().st_size < 200_000
    with pytest.raises(UnreadableFileError, match="rusak|tidak dapat dibaca sebagai Excel"):
        cells(path)


def _far_apart(path: Path, last: str) -> Path:
    rows = (
        '<row r="1"><c r="A1" t="n"><v>1</v></c></row>'
        f'<row r="{last.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}"><c r="{last}" t="n"><v>2</v></c>'
        "</row>"
    )
    return handmade_xlsx(path, sheet=sheet_xml(rows))


@pytest.mark.parametrize("last", ["XFD1048576", "XFD100000", "ZZ200000", "A1048576", "AAA40000"])
def test_far_apart_cells_are_refused_before_calamine_allocates(tmp_path: Path, last: str) -> None:
    if last == "A1048576":  # one column of a million rows is 32 MB: read
        assert len(cells(_far_apart(tmp_path / "panjang.xlsx", last))) == 2
        return
    with pytest.raises(UnreadableFileError, match="selnya tersebar sangat jauh"):
        cells(_far_apart(tmp_path / "jauh.xlsx", last))


def test_cells_without_references_are_counted_as_calamine_counts_them(tmp_path: Path) -> None:
    """Rows and cells without `r=` follow their predecessor: 20,000 unnumbered cells in
    the last row of Excel make a grid of 20 billion cells."""
    wide = "".join(["<c><v>1</v></c>"] * 20_000)
    rows = f'<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576">{wide}</row>'
    with pytest.raises(UnreadableFileError, match="selnya tersebar sangat jauh"):
        cells(handmade_xlsx(tmp_path / "tanpa-ref.xlsx", sheet=sheet_xml(rows)))
    leading_zero = (
        '<row r="1"><c r="A1"><v>1</v></c></row><row><c r="XFD01048576"><v>2</v></c></row>'
    )
    with pytest.raises(UnreadableFileError, match="selnya tersebar sangat jauh"):
        cells(handmade_xlsx(tmp_path / "nol.xlsx", sheet=sheet_xml(leading_zero)))


def test_an_ordinary_wide_sheet_still_reads(tmp_path: Path) -> None:
    """60 columns (up to BH) and rows with references: within the allowance, read as is."""
    row = "".join(f'<c r="{column_letters(c)}{{r}}"><v>{c}</v></c>' for c in range(1, 61))
    rows = "".join(f'<row r="{r}">{row.format(r=r)}</row>' for r in range(1, 201))
    read = cells(handmade_xlsx(tmp_path / "lebar.xlsx", sheet=sheet_xml(rows)))
    assert len(read) == 200
    assert len(read[0]) == 60
    assert MAX_COLUMNS == 16_384


# A launcher measures its child (see tests/test_cli.py): a child forked straight from the
# pytest worker would report the worker's resident pages, not its own.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "print(done.stdout.strip())\n"
)
READ = (
    "import sys\n"
    "from adapters.excel.source import ExcelSource\n"
    "from hub.errors import UnreadableFileError\n"
    "try:\n"
    "    print(sum(1 for _ in ExcelSource({'path': sys.argv[1]}).read()))\n"
    "except UnreadableFileError as exc:\n"
    "    print(type(exc).__name__)\n"
)


def test_far_apart_cells_keep_the_process_alive_and_small(tmp_path: Path) -> None:
    """Before the extent check, calamine asked for 512 GiB and aborted the process (SIGABRT,
    exit 134): in `hub serve` that is every request in flight."""
    path = _far_apart(tmp_path / "jauh.xlsx", "XFD1048576")
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, sys.executable, "-c", READ, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    status, outcome = done.stdout.splitlines()
    code, peak_kib = (int(part) for part in status.split())
    assert (code, outcome) == (0, "UnreadableFileError")
    assert peak_kib < 150 * 1024
