"""Find the table inside a hand-made report: header row(s), columns, data rows.

Real files carry title rows above the header ("LAPORAN KELAHIRAN BULAN JULI 2025"), two-row
headers under merged cells, a row of column numbers "(1) (2) (3)", the header repeated on
each printed page, and a total or signature block at the bottom. `iter_data_chunks` takes the
rows a source read (every non-blank row, in order) and yields only data rows, in chunks, each
with the layout of its table. Each sheet (`Provenance.part`) is a table of its own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from hub.errors import HeaderNotFoundError
from hub.records import CellValue, RawRow
from hub.schemas import FieldSpec, RecordSchema, SplitSpec, squeeze

HEADER_SCAN_ROWS = 30
#: Row-number columns every report has; they map to nothing and are not worth a warning.
IGNORED_HEADERS = frozenset(
    {"no", "nomor", "nourut", "nomorurut", "urut", "noreg", "nomorregister"}
)
_COLUMN_NUMBER = re.compile(r"^\(?\s*\d{1,3}\s*\)?\.?$")
_TRAILER = re.compile(
    r"^(jumlah|total|sub ?total|mengetahui|diketahui|menyetujui|kepala|lurah|camat|kades|"
    r"sekretaris|ttd|t\.t\.d|tanda tangan|nip\b|nip\.|dibuat oleh|petugas|operator|disahkan|"
    r"catatan|keterangan ?:|an\.|a\.n\.)",
)
_PLACE_DATE = re.compile(r"^[a-z .'-]{3,40},\s*\d{1,2}\s+[a-z]+\s+\d{4}$")


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the operator's file and what it maps to."""

    index: int
    label: str  # header text as in the file (two header rows joined with " / ")
    target: FieldSpec | SplitSpec | None


@dataclass(frozen=True)
class TableLayout:
    """The header of one table (sheet) and how its columns map to fields."""

    part: str
    header_rows: tuple[int, ...]
    columns: tuple[Column, ...]
    fields: dict[str, Column] = field(default_factory=dict)  # field -> its column
    splits: tuple[Column, ...] = ()
    unknown: tuple[Column, ...] = ()
    duplicated: tuple[Column, ...] = ()
    width: int = 0

    def label_of(self, field_name: str) -> str | None:
        column = self.fields.get(field_name)
        if column is not None:
            return column.label
        for split in self.splits:
            if isinstance(split.target, SplitSpec) and field_name in split.target.fields:
                return split.label
        return None

    def index_of(self, field_name: str) -> int | None:
        column = self.fields.get(field_name)
        if column is not None:
            return column.index
        for split in self.splits:
            if isinstance(split.target, SplitSpec) and field_name in split.target.fields:
                return split.index
        return None


def _text(value: CellValue) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _lookup(schema: RecordSchema, label: str) -> FieldSpec | SplitSpec | None:
    key = squeeze(label)
    if not key:
        return None
    target = schema.header_lookup.get(key)
    if target is None:
        # "Data Ibu / NIK" -> "nik ibu": drop filler words of grouped headers and retry.
        words = [
            w
            for w in re.split(r"[^0-9a-z]+", label.casefold())
            if w and w not in {"data", "identitas", "informasi"}
        ]
        target = schema.header_lookup.get("".join(words))
    return target


def _candidates(top: str, bottom: str) -> list[tuple[str, str]]:
    """(label shown, text to match) for a column under a two-row header."""
    if not top or top == bottom:
        return [(bottom, bottom)]
    if not bottom:
        return [(top, top)]
    shown = f"{top} / {bottom}"
    return [(shown, f"{bottom} {top}"), (shown, f"{top} {bottom}"), (shown, bottom), (shown, top)]


def _build(schema: RecordSchema, part: str, rows: Sequence[RawRow]) -> TableLayout:
    """A layout from one header row, or two (the top one's merged labels spread right)."""
    width = max(len(r.cells) for r in rows)
    bottom = [_text(c) for c in rows[-1].cells] + [""] * (width - len(rows[-1].cells))
    top = [""] * width
    if len(rows) == 2:
        raw_top = [_text(c) for c in rows[0].cells] + [""] * (width - len(rows[0].cells))
        carried = ""
        for i, text in enumerate(raw_top):
            # A label merged over several columns sits in its first cell only.
            carried = text or (carried if bottom[i] else "")
            top[i] = carried
    columns: list[Column] = []
    fields: dict[str, Column] = {}
    splits: list[Column] = []
    unknown: list[Column] = []
    duplicated: list[Column] = []
    taken: set[str] = set()
    for i in range(width):
        options = _candidates(top[i], bottom[i])
        if not options[0][0]:
            continue
        label, target = options[0][0], None
        for shown, text in options:
            target = _lookup(schema, text)
            if target is not None:
                label = shown
                break
        column = Column(i, label, target)
        columns.append(column)
        if target is None:
            if squeeze(label) not in IGNORED_HEADERS:
                unknown.append(column)
            continue
        names = (target.name,) if isinstance(target, FieldSpec) else target.fields
        if any(name in taken for name in names):
            duplicated.append(column)
            continue
        taken.update(names)
        if isinstance(target, FieldSpec):
            fields[target.name] = column
        else:
            splits.append(column)
    return TableLayout(
        part=part,
        header_rows=tuple(r.provenance.row for r in rows),
        columns=tuple(columns),
        fields=fields,
        splits=tuple(splits),
        unknown=tuple(unknown),
        duplicated=tuple(duplicated),
        width=width,
    )


def _score(layout: TableLayout) -> int:
    return len(layout.fields) + sum(
        len(c.target.fields) for c in layout.splits if isinstance(c.target, SplitSpec)
    )


def find_header(schema: RecordSchema, part: str, rows: Sequence[RawRow]) -> TableLayout | None:
    """The best header among the first rows of a table, or None when nothing looks like one."""
    best: TableLayout | None = None
    best_score = 0
    singles = [_score(_build(schema, part, rows[i : i + 1])) for i in range(len(rows))]
    for i, row in enumerate(rows):
        candidates = [rows[i : i + 1]]
        if i + 1 < len(rows) and rows[i + 1].provenance.row == row.provenance.row + 1:
            candidates.append(rows[i : i + 2])
        for candidate in candidates:
            layout = _build(schema, part, candidate)
            score = _score(layout)
            if len(candidate) == 2 and score <= singles[i + 1]:
                continue  # a second header row must add something its lower row lacks
            if score > best_score:
                best, best_score = layout, score
    filled = len(best.columns) if best else 0
    if best is None or best_score < 3 and not (best_score >= 2 and filled <= 3):
        return None
    return best


def _is_column_numbers(row: RawRow) -> bool:
    texts = [_text(c) for c in row.cells if _text(c)]
    if len(texts) < 3 or not all(_COLUMN_NUMBER.match(t) for t in texts):
        return False
    numbers = [int(re.sub(r"\D", "", t)) for t in texts]
    return numbers == sorted(numbers) and numbers[0] <= 2


def _is_trailer_start(row: RawRow) -> bool:
    first = next((_text(c) for c in row.cells if _text(c)), "")
    lowered = first.casefold()
    return bool(_TRAILER.match(lowered) or _PLACE_DATE.match(lowered))


def _repeats_header(layout: TableLayout, row: RawRow) -> bool:
    cells = row.cells
    first = layout.columns[0] if layout.columns else None
    if first is None or first.index >= len(cells) or cells[first.index] != first.label:
        return False  # cheap test first: a repeated header starts with the same label
    same = sum(
        1
        for c in layout.columns
        if c.index < len(cells)
        and isinstance(cells[c.index], str)
        and _text(cells[c.index]) == c.label
    )
    return same >= max(3, len(layout.columns) // 2)


def iter_data_chunks(
    rows: Iterator[RawRow],
    schema: RecordSchema,
    size: int,
    *,
    skipped_parts: list[str] | None = None,
) -> Iterator[tuple[TableLayout, list[RawRow]]]:
    """Data rows of every table in `rows`, at most `size` consecutive rows of one table at a
    time, each chunk with the layout of its table.

    Raises `HeaderNotFoundError` when no table has a recognisable header. Tables (sheets)
    without one are skipped and named in `skipped_parts`.
    """
    found_any = False
    pending: list[RawRow] = []
    part: str | None = None
    layout: TableLayout | None = None
    in_trailer = False
    after_header = False
    chunk: list[RawRow] = []

    def resolve() -> None:
        """Find the header among the pending rows; their data rows start `chunk`."""
        nonlocal layout, found_any, in_trailer, after_header
        layout = find_header(schema, part or "", pending)
        if layout is None:
            if skipped_parts is not None and part is not None:
                skipped_parts.append(part)
            pending.clear()
            return
        found_any = True
        in_trailer, after_header = False, True
        last_header = layout.header_rows[-1]
        rest = [r for r in pending if r.provenance.row > last_header]
        pending.clear()
        chunk.extend(r for r in rest if is_data(r))

    def split(everything: bool) -> Iterator[tuple[TableLayout, list[RawRow]]]:
        """Chunks of `size` off the front of `chunk` (and the rest too when `everything`):
        the rows found with a header may be more than `size`."""
        nonlocal chunk
        while chunk and (everything or len(chunk) >= size):
            assert layout is not None
            yield layout, chunk[:size]
            chunk = chunk[size:]

    def is_data(row: RawRow) -> bool:
        """Whether a row after the header is data (a plain function, not a generator: it
        runs for every row of every file)."""
        nonlocal in_trailer, after_header
        assert layout is not None
        if after_header:
            after_header = False
            if _is_column_numbers(row):
                return False
        cells = row.cells
        filled = len(cells) - cells.count(None) - cells.count("")  # counted in C
        dense = filled * 2 >= max(2, len(layout.fields) + len(layout.splits))
        if in_trailer and not dense:
            return False
        if not dense and _is_trailer_start(row):
            in_trailer = True
            return False
        in_trailer = False
        if _repeats_header(layout, row):
            after_header = True
            return False
        return dense or any(_text(c) for c in cells)

    for row in rows:
        if row.provenance.part != part:
            if layout is None and pending:
                resolve()
            yield from split(everything=True)
            part, layout, pending = row.provenance.part, None, []
        if layout is None:
            pending.append(row)
            if len(pending) >= HEADER_SCAN_ROWS:
                resolve()
                yield from split(everything=False)
                if layout is None:
                    part = row.provenance.part  # keep skipping this table
                    layout = _SKIP
            continue
        if layout is not _SKIP and is_data(row):
            chunk.append(row)
            if len(chunk) >= size:
                yield layout, chunk
                chunk = []
    if layout is None and pending:
        resolve()
    yield from split(everything=True)
    if not found_any:
        examples = ", ".join(
            spec.aliases[0] if spec.aliases else spec.title
            for spec in schema.fields.values()
            if spec.required
        )
        raise HeaderNotFoundError(
            f"Baris judul kolom untuk laporan {schema.record_type} tidak ditemukan. "
            f"Pastikan berkas memiliki baris judul dengan kolom seperti: {examples}."
        )


_SKIP = TableLayout(part="", header_rows=(), columns=())


def cell_text(value: CellValue) -> str:
    """A cell as the operator sees it, for messages and reports."""
    if isinstance(value, dt.datetime):
        return (
            value.strftime("%d/%m/%Y %H:%M")
            if value.time() != dt.time()
            else value.strftime("%d/%m/%Y")
        )
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return _text(value)
