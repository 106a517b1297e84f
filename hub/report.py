"""The validation report an operator gets back after an upload.

`write_report` picks the format from the suffix of the output path:

- ``.xlsx``: the operator's own sheets written back, each row at its original row number
  with its original values, every cell with an issue filled (red: kesalahan, yellow:
  peringatan; red wins) and carrying a comment that lists every message for it. An issue
  about the whole row (``Issue.col is None``) marks the first cell of that row, its comment
  line saying "(seluruh baris)". A "Kesalahan" sheet lists every issue (the row number links
  to the marked cell) and a "Ringkasan" sheet, shown first, gives the counts and explains
  the colours. Written with openpyxl's write-only mode, so rows stream to disk; only the
  issues and the cell comments stay in memory until the file is saved.
- ``.csv``: the list of issues, UTF-8 with BOM and ``;`` between fields, the dialect that
  Indonesian-locale Excel opens with a double click.
- ``.json``: the summary object plus ``"issues"``, one `Issue.as_dict` per issue.

Issues are listed by sheet (in the order of the source), row, column, errors first.

Nothing in a report is ever run as a formula by a spreadsheet: text that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written to xlsx as a plain
string cell (with Excel's "quote prefix", so editing the cell does not turn it into a
formula either) and to csv behind a single quote ``'``. Numbers stay numbers.

Example::

    write_report(Path("lahir.hasil.xlsx"), result.issues, source_rows=source.read(),
                 summary={"file": "lahir.xlsx", "type": "kelahiran", "rows": 120, ...})

The file appears only when it is complete: it is written next to `out` under a temporary
name (readable by its owner only, as the report holds personal data) and moved into place.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.comments import Comment
from openpyxl.styles import Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.hyperlink import Hyperlink

from hub.errors import ConfigError
from hub.records import CellValue, Issue, MergedRange, RawRow

__all__ = ["write_report"]

#: What a write-only worksheet accepts per position: a plain value or a prepared cell.
_Out: TypeAlias = Cell | str | float | None  # int and bool included
_Index: TypeAlias = dict[tuple[str, int], dict[int, list[Issue]]]

FORMATS: Final = (".xlsx", ".csv", ".json")

#: A text starting with one of these may be taken for a formula by a spreadsheet.
FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")

AUTHOR: Final = "LAMPID Hub"
SEVERITY_LABELS: Final[Mapping[str, str]] = {"error": "Kesalahan", "warning": "Peringatan"}
CSV_COLUMNS: Final = ("baris", "sheet", "kolom", "field", "kode", "tingkat", "pesan", "nilai")
SUMMARY_LABELS: Final = (
    ("file", "Berkas"),
    ("type", "Jenis laporan"),
    ("rows", "Total baris"),
    ("valid", "Diterima"),
    ("invalid", "Ditolak"),
    ("duplicates", "Duplikat"),
    ("warnings", "Baris dengan peringatan"),
)

# Cell styles are registered once per workbook as named styles: assigning a Font or a Fill
# to every marked cell makes openpyxl hash it again each time, which dominated the run time.
# Colours are those of Excel's own "Bad" and "Neutral" styles.
_STYLE_NAMES: Final[Mapping[str, str]] = {
    "error": "LAMPID Kesalahan",
    "warning": "LAMPID Peringatan",
    "header": "LAMPID Judul",
    "link": "LAMPID Tautan",
}


def _add_styles(wb: Workbook) -> None:
    """Register the report's named styles in `wb`."""
    looks = {
        "error": (PatternFill(fill_type="solid", fgColor="FFC7CE"), Font(color="9C0006")),
        "warning": (PatternFill(fill_type="solid", fgColor="FFEB9C"), Font(color="9C5700")),
        "header": (PatternFill(), Font(bold=True)),
        "link": (PatternFill(), Font(color="0563C1", underline="single")),
    }
    for key, (fill, font) in looks.items():
        wb.add_named_style(NamedStyle(name=_STYLE_NAMES[key], fill=fill, font=font))


_DATE_FORMAT: Final = "dd/mm/yyyy"
_DATETIME_FORMAT: Final = "dd/mm/yyyy hh:mm"
_TIME_FORMAT: Final = "hh:mm"
_INTEGER_FORMAT: Final = "0"  # 16-digit NIKs typed as numbers, shown in full, not 3.27E+15
_LONG_NUMBER: Final = 1e11  # from here on Excel's "General" format switches to E-notation

_MAX_ROW: Final = 1_048_576
_MAX_COL: Final = 16_384
_MAX_TEXT: Final = 32_767
_BAD_TITLE = re.compile(r"[\[\]:*?/\\]")
_COMMENT_WIDTH: Final = 320  # pixels
_COMMENT_CHARS_PER_LINE: Final = 45


def write_report(
    out: Path,
    issues: Iterable[Issue],
    *,
    source_rows: Iterable[RawRow] | None,
    summary: Mapping[str, Any],
    merged: Mapping[str, Sequence[MergedRange]] | None = None,
) -> None:
    """Write the validation report to `out`; its suffix (.xlsx, .csv, .json) picks the format.

    `source_rows` are all non-blank rows of the operator's file in order; they are read once
    and only by the xlsx report (without them it holds just the summary and the issue list).
    `merged`, the source's `merged_ranges()` (filled while `source_rows` are read), are merged
    again in the report, their value in the first cell only (the rows carry it in every cell
    they cover).
    `summary` is the CLI's report object (file, type, rows, valid, invalid, duplicates,
    warnings). Raises `ConfigError` for any other suffix.
    """
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"Format laporan tidak dikenal untuk {out.name!r}: "
            "gunakan akhiran .xlsx, .csv, atau .json."
        )
    items = list(issues)

    def write(path: Path) -> None:
        if suffix == ".xlsx":
            # the very mapping, even empty: the source fills it while its rows are read
            _write_xlsx(path, items, source_rows, summary, {} if merged is None else merged)
        elif suffix == ".csv":
            _write_csv(path, _ordered(items))
        else:
            _write_json(path, _ordered(items), summary)

    _atomic(out, write)


# --- shared helpers -----------------------------------------------------------------------


def _atomic(out: Path, write: Callable[[Path], None]) -> None:
    """Run `write` on a temporary file next to `out`, then move it into place."""
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _ordered(issues: Iterable[Issue], parts: Sequence[str] = ()) -> list[Issue]:
    """Issues by sheet (in `parts` order, then first seen), row, column, errors first."""
    items = list(issues)
    rank = {part: n for n, part in enumerate(parts)}
    for issue in items:
        rank.setdefault(issue.sheet, len(rank))
    return sorted(
        items,
        key=lambda i: (
            rank[i.sheet],
            i.row,
            -1 if i.col is None else i.col,
            i.severity != "error",
        ),
    )


def _severity_label(issue: Issue) -> str:
    return SEVERITY_LABELS.get(issue.severity, issue.severity)


def _column_label(issue: Issue) -> str:
    """How the operator finds the column: its letter and header, e.g. "C (Tgl Lahir)"."""
    letter = (
        get_column_letter(issue.col + 1)
        if issue.col is not None and 0 <= issue.col < _MAX_COL
        else ""
    )
    if letter and issue.column:
        return f"{letter} ({issue.column})"
    return letter or issue.column or "(seluruh baris)"


def _is_risky(text: str) -> bool:
    """True when a spreadsheet could take `text` for a formula."""
    return text.startswith(FORMULA_PREFIXES)


# --- csv ----------------------------------------------------------------------------------


def csv_safe(text: str | None) -> str:
    """`text` for a csv cell: "" for None, a leading `'` when it could start a formula."""
    if text is None:
        return ""
    return f"'{text}" if _is_risky(text) else text


def _write_csv(path: Path, issues: Sequence[Issue]) -> None:
    """The issue list as `;`-separated UTF-8 with BOM."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for issue in issues:
            writer.writerow(
                (
                    issue.row,
                    csv_safe(issue.sheet),
                    csv_safe(_column_label(issue)),
                    csv_safe(issue.field),
                    csv_safe(issue.code),
                    _severity_label(issue),
                    csv_safe(issue.message),
                    csv_safe(issue.value),
                )
            )


# --- json ---------------------------------------------------------------------------------


def _write_json(path: Path, issues: Sequence[Issue], summary: Mapping[str, Any]) -> None:
    """The summary's keys, then "issues", written one issue at a time."""

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=str)

    with path.open("w", encoding="utf-8") as fh:
        fh.write("{")
        for key, value in summary.items():
            if key != "issues":
                fh.write(f"\n  {dumps(str(key))}: {dumps(value)},")
        fh.write('\n  "issues": [')
        for n, issue in enumerate(issues):
            fh.write(f"{',' if n else ''}\n    {dumps(issue.as_dict())}")
        fh.write("\n  ]\n}\n")


# --- xlsx: cells --------------------------------------------------------------------------


def _text(ws: Any, value: str) -> str | Cell:
    """A text cell that stays text: no formula, no error value, no illegal characters."""
    if ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    value = value[:_MAX_TEXT]
    if not (_is_risky(value) or value in ERROR_CODES):
        return value
    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"  # openpyxl makes "=..." a formula and "#N/A" an error
    cell.quotePrefix = 1  # and Excel keeps it text even when the operator edits it
    return cell


def _optional_text(ws: Any, value: str | None) -> str | Cell | None:
    return _text(ws, value) if value else None


def _formatted(ws: Any, value: float | dt.date | dt.time | dt.timedelta, fmt: str) -> Cell:
    cell = WriteOnlyCell(ws)
    cell.number_format = fmt
    cell.value = value
    return cell


def _value(ws: Any, value: CellValue) -> _Out:
    """A source cell value as it goes back into the sheet, keeping its type."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(ws, value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return _text(ws, str(value))
        if abs(value) >= _LONG_NUMBER and value == int(value):
            return _formatted(ws, value, _INTEGER_FORMAT)
        return value
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=None)
        if value.year < 1900:  # before Excel's calendar: keep it readable
            return _text(ws, value.strftime("%d/%m/%Y %H:%M"))
        fmt = _DATE_FORMAT if value.time() == dt.time() else _DATETIME_FORMAT
        return _formatted(ws, value, fmt)
    if isinstance(value, dt.date):
        if value.year < 1900:
            return _text(ws, value.strftime("%d/%m/%Y"))
        return _formatted(ws, value, _DATE_FORMAT)
    if isinstance(value, dt.time):
        return _formatted(ws, value.replace(tzinfo=None), _TIME_FORMAT)
    return _formatted(ws, value, "[h]:mm:ss")


def _comment(issues: Sequence[Issue]) -> Comment:
    """One comment listing every message for a cell, errors first, each message once."""
    lines: list[str] = []
    for issue in sorted(issues, key=lambda i: i.severity != "error"):
        scope = " (seluruh baris)" if issue.col is None else ""
        line = f"{_severity_label(issue)}{scope}: {issue.message}"
        if line not in lines:
            lines.append(line)
    text = "\n".join(lines)[:_MAX_TEXT]
    wrapped = sum(1 + len(line) // _COMMENT_CHARS_PER_LINE for line in lines)
    return Comment(text, AUTHOR, height=min(24 + 16 * wrapped, 600), width=_COMMENT_WIDTH)


def _marked(ws: Any, out: _Out, issues: Sequence[Issue]) -> Cell:
    """`out` as a cell filled by its worst severity and carrying the messages."""
    cell = out if isinstance(out, Cell) else WriteOnlyCell(ws, out)
    worst = "error" if any(i.severity == "error" for i in issues) else "warning"
    number_format, quote_prefix = cell.number_format, cell.quotePrefix
    cell.style = _STYLE_NAMES[worst]  # replaces the whole cell style: restore the rest
    if number_format != "General":
        cell.number_format = number_format
    if quote_prefix:
        cell.quotePrefix = 1
    cell.comment = _comment(issues)
    return cell


def _index(issues: Iterable[Issue]) -> _Index:
    """(sheet, row) -> target column -> issues; row-level issues go to the first cell."""
    index: _Index = defaultdict(lambda: defaultdict(list))
    for issue in issues:
        if not 1 <= issue.row <= _MAX_ROW:
            continue
        col = issue.col if issue.col is not None and 0 <= issue.col < _MAX_COL else 0
        index[(issue.sheet, issue.row)][col].append(issue)
    return index


# --- xlsx: sheets -------------------------------------------------------------------------


class _Titles:
    """Valid, unique sheet titles (Excel compares them case-insensitively)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, wanted: str) -> str:
        base = _BAD_TITLE.sub("_", wanted).strip("'")[:31] or "Data"
        title, n = base, 1
        while title.casefold() in self._used:
            n += 1
            suffix = f" ({n})"
            title = base[: 31 - len(suffix)] + suffix
        self._used.add(title.casefold())
        return title


class _DataSheet:
    """One output sheet per source part, rows placed at their original row numbers."""

    def __init__(
        self,
        wb: Workbook,
        part: str,
        title: str,
        index: _Index,
        merged: Sequence[MergedRange] = (),
    ) -> None:
        self.part = part
        self.title = title
        self.ws = wb.create_sheet(title)
        self.index = index
        self.next_row = 1
        self.written: set[int] = set()  # rows whose issues are marked here
        self.merged = merged
        # Merged ranges swept with the rows (which come in order): those still to start, last
        # first, and those covering the current row. Memory follows the number of ranges, not
        # their size (a range may be declared over a million rows).
        self.waiting = sorted(merged, reverse=True)
        self.active: list[MergedRange] = []
        self.kept_apart: set[tuple[int, int]] = set()  # (first row, first column) of ranges

    def write(self, row: int, values: Sequence[CellValue]) -> None:
        """Write a source row at `row`; a row out of order goes to the next free row."""
        while self.next_row < row:  # blank rows of the source, which may carry issues
            self._append(self.next_row, ())
        self._append(row, values)

    def finish(self) -> None:
        """Mark issues on rows after the last source row (a trailing blank row, say), and
        merge the source's merged cells again."""
        for row in sorted(r for (p, r) in self.index if p == self.part and r >= self.next_row):
            self.write(row, ())
        for top, left, bottom, right in self.merged:
            if (top, left) != (bottom, right) and (top, left) not in self.kept_apart:
                self.ws.merged_cells.add(
                    CellRange(min_row=top, min_col=left + 1, max_row=bottom, max_col=right + 1)
                )

    def _covering(self, row: int) -> list[MergedRange]:
        """The merged ranges that cover `row`."""
        while self.waiting and self.waiting[-1][0] <= row:
            self.active.append(self.waiting.pop())
        if self.active:
            self.active = [merged for merged in self.active if merged[2] >= row]
        return self.active

    def _append(self, row: int, values: Sequence[CellValue]) -> None:
        """Append `values` at the next row, marked with the issues of source row `row`."""
        ws = self.ws
        cells = [_value(ws, v) for v in values]
        marks = self.index.get((self.part, row))
        for top, left, _, right in self._covering(row):
            for col in range(left, min(right + 1, len(cells))):
                if (row, col) == (top, left):
                    continue
                if marks and col in marks:  # a mark inside: keep the cells, do not merge
                    self.kept_apart.add((top, left))
                else:
                    cells[col] = None  # the merged value shows in the first cell only
        if marks:
            cells.extend([None] * (max(marks) + 1 - len(cells)))
            for col, issues in marks.items():
                cells[col] = _marked(ws, cells[col], issues)
            if row == self.next_row:
                self.written.add(row)
        ws.append(cells)
        self.next_row += 1


def _header(ws: Any, labels: Sequence[str]) -> list[Cell]:
    cells = []
    for label in labels:
        cell = WriteOnlyCell(ws, label)
        cell.style = _STYLE_NAMES["header"]
        cells.append(cell)
    return cells


def _write_issue_sheet(
    wb: Workbook, title: str, issues: Sequence[Issue], sheets: Mapping[str, _DataSheet]
) -> None:
    """The "Kesalahan" sheet: one line per issue, bold header, frozen, with auto-filter."""
    with_sheet = any(i.sheet for i in issues) or len(sheets) > 1
    labels = ["Baris", "Kolom", "Field", "Kode", "Tingkat", "Pesan", "Nilai"]
    widths = [8, 28, 20, 18, 12, 70, 28]
    if with_sheet:
        labels.insert(0, "Lembar")
        widths.insert(0, 16)
    ws = wb.create_sheet(title)
    for n, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(n)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(labels))}{len(issues) + 1}"
    ws.append(_header(ws, labels))
    for issue in issues:
        sheet = sheets.get(issue.sheet)
        row: Cell | int = issue.row
        if sheet is not None and issue.row in sheet.written:
            row = WriteOnlyCell(ws, issue.row)
            col = issue.col if issue.col is not None and 0 <= issue.col < _MAX_COL else 0
            target = f"{quote_sheetname(sheet.title)}!{get_column_letter(col + 1)}{issue.row}"
            row.hyperlink = Hyperlink(ref="", location=target, tooltip="Lihat sel")
            row.style = _STYLE_NAMES["link"]
        severity = WriteOnlyCell(ws, _severity_label(issue))
        severity.style = _STYLE_NAMES["error" if issue.severity == "error" else "warning"]
        line: list[_Out] = [
            row,
            _text(ws, _column_label(issue)),
            _optional_text(ws, issue.field),
            _text(ws, issue.code),
            severity,
            _text(ws, issue.message),
            _optional_text(ws, issue.value),
        ]
        if with_sheet:
            line.insert(0, _optional_text(ws, issue.sheet))
        ws.append(line)


def _write_summary_sheet(
    wb: Workbook, title: str, issues_title: str, issues: Sequence[Issue], summary: Mapping[str, Any]
) -> None:
    """The "Ringkasan" sheet: counts in Indonesian and how to read the colours."""
    ws = wb.create_sheet(title)
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 60
    ws.append(_header(ws, ["Laporan validasi LAMPID Hub"]))
    ws.append([])
    for key, label in SUMMARY_LABELS:
        if key in summary:
            value = summary[key]
            out = value if isinstance(value, int | float) else _text(ws, str(value))
            ws.append([label, out])
    errors = sum(1 for i in issues if i.severity == "error")
    ws.append(["Jumlah pesan kesalahan", errors])
    ws.append(["Jumlah pesan peringatan", len(issues) - errors])
    ws.append([])
    ws.append(_header(ws, ["Cara membaca"]))
    for severity, text in (
        ("error", "Sel merah: kesalahan. Baris ini ditolak; perbaiki lalu unggah ulang."),
        ("warning", "Sel kuning: peringatan. Baris tetap diterima; mohon periksa kembali."),
    ):
        legend = WriteOnlyCell(ws, SEVERITY_LABELS[severity])
        legend.style = _STYLE_NAMES[severity]
        ws.append([legend, text])
    ws.append([None, "Arahkan kursor ke sel berwarna untuk membaca pesannya."])
    ws.append([None, "Kesalahan untuk seluruh baris ditandai pada sel pertama baris itu."])
    ws.append([None, f"Daftar lengkap ada di lembar '{issues_title}'."])


def _write_xlsx(
    path: Path,
    issues: Sequence[Issue],
    source_rows: Iterable[RawRow] | None,
    summary: Mapping[str, Any],
    merged: Mapping[str, Sequence[MergedRange]],
) -> None:
    """Ringkasan, then the operator's sheets marked up, then Kesalahan."""
    wb = Workbook(write_only=True)
    try:
        _add_styles(wb)
        index = _index(issues)
        titles = _Titles()
        sheets: dict[str, _DataSheet] = {}
        for raw in source_rows or ():
            part = raw.provenance.part
            sheet = sheets.get(part)
            if sheet is None:
                title = titles.take(part or "Data")
                sheet = sheets[part] = _DataSheet(wb, part, title, index, merged.get(part, ()))
            sheet.write(raw.provenance.row, raw.cells)
        for sheet in sheets.values():
            sheet.finish()
        issues_title = titles.take("Kesalahan")
        _write_issue_sheet(wb, issues_title, _ordered(issues, list(sheets)), sheets)
        summary_title = titles.take("Ringkasan")
        _write_summary_sheet(wb, summary_title, issues_title, issues, summary)
        wb.move_sheet(summary_title, -(len(wb.sheetnames) - 1))
        wb.save(path)
    except BaseException:
        _discard(wb)
        raise


def _discard(wb: Workbook) -> None:
    """Close the sheets of a workbook that will not be saved and delete their temp files.

    Write-only sheets stream to temporary files that openpyxl deletes only on save or at
    interpreter exit; a long-running hub must not leave operators' data lying in /tmp.
    """
    for ws in wb.worksheets:
        with contextlib.suppress(Exception):
            if not ws.closed:
                ws.close()
            writer = getattr(ws, "_writer", None)  # openpyxl has no public handle on it
            if writer is not None:
                writer.cleanup()
