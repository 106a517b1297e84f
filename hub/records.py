"""The values that flow through the hub: rows as read, their provenance, issues found."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeAlias

#: A cell as a source read it. CSV cells are always `str`; spreadsheet cells keep their type
#: (a NIK typed as a number arrives as `float` or `int`, a real date as `date`/`datetime`).
CellValue: TypeAlias = (
    str | int | float | bool | dt.date | dt.datetime | dt.time | dt.timedelta | None
)

Severity: TypeAlias = Literal["error", "warning"]
Outcome: TypeAlias = Literal["valid", "invalid", "duplicate"]


class Provenance(NamedTuple):
    """Where a row came from, kept next to the data and never inside it.

    >>> Provenance("excel", "lahir.xlsx", 12, part="Juli").position
    'Juli!R12'

    Provenance and `RawRow` are named tuples: a source makes one of each for every row it
    reads, and a tuple is made several times faster than a frozen dataclass.
    """

    source: str  # adapter name: "excel", "csv", "sqlserver", "api"
    locator: str  # file name or table
    row: int  # row number as the operator sees it (Excel row, CSV line, primary key)
    part: str = ""  # sheet name; a new part starts a new table (its own header)

    @property
    def position(self) -> str:
        if self.source == "excel":
            return f"{self.part}!R{self.row}" if self.part else f"R{self.row}"
        if self.source == "csv":
            return f"line {self.row}"
        return f"{self.part}#{self.row}" if self.part else f"#{self.row}"


#: Cells merged into one in a workbook: (first row, first column, last row, last column), rows
#: numbered as the operator sees them (1-based), columns as indexes into `RawRow.cells`.
MergedRange: TypeAlias = tuple[int, int, int, int]


class RawRow(NamedTuple):
    """One non-blank row of a source, cells in the source's own column order."""

    cells: tuple[CellValue, ...]
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in one row (or, with `row == header row`, in one column)."""

    row: int
    column: str | None  # header text as written in the file
    field: str | None  # canonical field name
    code: str
    severity: Severity
    message: str
    value: str | None = None
    sheet: str = ""  # sheet name for workbooks
    col: int | None = None  # 0-based column index in the source row

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "sheet": self.sheet,
            "column": self.column,
            "field": self.field,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
        }
