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

from hub.errors import HeaderNotFoundError, NoDataRowsError
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
#: Page markers of printed reports ("Halaman 1 dari 2", "Hal. 3", "Page 2 of 5", "- 2 -").
_PAGE_MARK = re.compile(
    r"^(?:(?:halaman|hal\.?|lembar|page)\s*\d+(?:\s*(?:dari|/|of)\s*\d+)?|-\s*\d+\s*-)$"
)
#: Words of a group label that say nothing about its columns ("DATA IBU", "DAERAH ASAL").
_FILLER_WORDS = frozenset({"data", "identitas", "informasi", "daerah"})
#: Roles that exclude each other: a column under "DAERAH ASAL" is never a `..._tujuan` field.
_OPPOSITE_ROLES = {"asal": "tujuan", "tujuan": "asal", "ibu": "ayah", "ayah": "ibu"}


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
    # columns whose lower label alone names a field their group label rules out
    # ("DAERAH ASAL / Alamat" is not `alamat_tujuan`): they are among `unknown`
    ruled_out: int = 0

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
        words = [w for w in _words(label) if w not in _FILLER_WORDS]
        target = schema.header_lookup.get("".join(words))
    return target


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", text.casefold()) if w]


def _candidates(top: str, bottom: str) -> list[tuple[str, str, bool]]:
    """(label shown, text to match, whether that text is the lower label alone) for a column
    under a two-row header: both labels together first."""
    if not top or top == bottom:
        return [(bottom, bottom, False)]
    if not bottom:
        return [(top, top, False)]
    shown = f"{top} / {bottom}"
    return [
        (shown, f"{bottom} {top}", False),
        (shown, f"{top} {bottom}", False),
        (shown, bottom, True),
        (shown, top, False),
    ]


def _may_stand_alone(
    schema: RecordSchema, target: FieldSpec | SplitSpec, label: str, group: str, ambiguous: bool
) -> bool:
    """Whether a column labelled `label` under the group label `group` may take the field its
    label names on its own. Not when the same lower label sits under other groups too ("Alamat"
    under both "DAERAH ASAL" and "DAERAH TUJUAN"), nor when the group names the opposite
    role of that field ("Alamat" under "DAERAH ASAL" is not the `alamat_tujuan` field)."""
    if ambiguous:
        return False
    excluded = {_OPPOSITE_ROLES[w] for w in _words(group) if w in _OPPOSITE_ROLES}
    if not excluded or any(w in _OPPOSITE_ROLES for w in _words(label)):
        return True  # no role in the group, or the label states its own ("Kode Tujuan")
    names = (target.name,) if isinstance(target, FieldSpec) else target.fields
    words = set()
    for name in names:
        spec = schema.fields.get(name)
        for text in (name, *(spec.aliases if spec else ())):
            words.update(_words(text))
    return not excluded & words


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
    groups: dict[str, set[str]] = {}  # lower label -> the group labels it sits under
    for upper, lower in zip(top, bottom, strict=True):
        if upper and lower and upper != lower:
            groups.setdefault(squeeze(lower), set()).add(squeeze(upper))
    columns: list[Column] = []
    fields: dict[str, Column] = {}
    splits: list[Column] = []
    unknown: list[Column] = []
    duplicated: list[Column] = []
    taken: set[str] = set()
    ruled_out = 0
    for i in range(width):
        options = _candidates(top[i], bottom[i])
        if not options[0][0]:
            continue
        label, target = options[0][0], None
        ambiguous = len(groups.get(squeeze(bottom[i]), ())) > 1
        for shown, text, alone in options:
            target = _lookup(schema, text)
            if target is not None and alone:
                if not _may_stand_alone(schema, target, bottom[i], top[i], ambiguous):
                    target, ruled_out = None, ruled_out + 1
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
        ruled_out=ruled_out,
    )


def _score(layout: TableLayout) -> int:
    return len(layout.fields) + sum(
        len(c.target.fields) for c in layout.splits if isinstance(c.target, SplitSpec)
    )


def _adds_to(two_rows: TableLayout, lower: TableLayout) -> bool:
    """Whether an upper header row adds something to its lower row alone: more fields,
    columns told apart that the lower row alone names twice ("Alamat" under "DAERAH ASAL" and
    under "DAERAH TUJUAN"), or groups that rule out what a lower label alone would name. A
    title row above a header adds nothing."""
    score, lower_score = _score(two_rows), _score(lower)
    return (
        score > lower_score
        or (score == lower_score and len(two_rows.duplicated) < len(lower.duplicated))
        or (two_rows.ruled_out > 0 and score + two_rows.ruled_out >= lower_score)
    )


def find_header(schema: RecordSchema, part: str, rows: Sequence[RawRow]) -> TableLayout | None:
    """The best header among the first rows of a table, or None when nothing looks like one."""
    best: TableLayout | None = None
    best_score = 0
    singles = [_build(schema, part, rows[i : i + 1]) for i in range(len(rows))]
    lower_rows: set[int] = set()  # rows that are the lower half of a two-row header
    for i, row in enumerate(rows):
        candidates = [] if i in lower_rows else [singles[i]]
        if i + 1 < len(rows) and rows[i + 1].provenance.row == row.provenance.row + 1:
            pair = _build(schema, part, rows[i : i + 2])
            if _adds_to(pair, singles[i + 1]):
                candidates.append(pair)
                lower_rows.add(i + 1)
        for layout in candidates:
            score = _score(layout)
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


def _is_page_mark(row: RawRow) -> bool:
    """A row holding only a page marker ("Halaman 1 dari 2") of a printed report."""
    texts = [_text(c) for c in row.cells if _text(c)]
    return len(texts) == 1 and bool(_PAGE_MARK.match(texts[0].casefold()))


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


def missing_required(schema: RecordSchema, layout: TableLayout) -> list[str]:
    """Required fields no column of `layout` gives (the region, which `--kelurahan` may fill,
    aside)."""
    given = set(layout.fields)
    for column in layout.splits:
        if isinstance(column.target, SplitSpec):
            given.update(column.target.fields)
    return [n for n in schema.required if n not in given and n != schema.wilayah_field]


def other_record_type(
    schema: RecordSchema,
    layout: TableLayout,
    rows: Sequence[RawRow],
    alternatives: Sequence[RecordSchema],
) -> RecordSchema | None:
    """Another record type whose header `rows` really are: the header found for `schema`
    lacks required columns, and the other type's header has them all and maps more columns."""
    if not alternatives or not missing_required(schema, layout):
        return None
    score = _score(layout)
    for other in alternatives:
        theirs = find_header(other, layout.part, rows)
        if theirs is not None and _score(theirs) > score and not missing_required(other, theirs):
            return other
    return None


def iter_data_chunks(
    rows: Iterator[RawRow],
    schema: RecordSchema,
    size: int,
    *,
    skipped_parts: list[str] | None = None,
    alternatives: Sequence[RecordSchema] = (),
    require_rows: bool = False,
) -> Iterator[tuple[TableLayout, list[RawRow]]]:
    """Data rows of every table in `rows`, at most `size` consecutive rows of one table at a
    time, each chunk with the layout of its table.

    Raises `HeaderNotFoundError` when no table has a recognisable header and, with
    `require_rows`, `NoDataRowsError` when the tables have headers but no data row. Tables (sheets)
    without one are skipped and named in `skipped_parts`; so are tables whose header is
    plainly one of the `alternatives` (another record type) and not this one.
    """
    found_any = yielded_any = False
    other_types: list[RecordSchema] = []  # what the skipped tables were instead
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
        if layout is not None:
            other = other_record_type(schema, layout, pending, alternatives)
            if other is not None:
                other_types.append(other)
                layout = None
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
        nonlocal chunk, yielded_any
        while chunk and (everything or len(chunk) >= size):
            assert layout is not None
            yielded_any = True
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
        if not dense and _is_page_mark(row):
            after_header = True  # the next page may start with the header and its numbers
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
                yielded_any = True
                yield layout, chunk
                chunk = []
    if layout is None and pending:
        resolve()
    yield from split(everything=True)
    if require_rows and found_any and not yielded_any:
        raise NoDataRowsError(
            "Berkas ini hanya berisi judul kolom; tidak ada baris data di bawahnya. "
            "Isi datanya lalu unggah ulang."
        )
    if not found_any and other_types:
        other = other_types[0]
        raise HeaderNotFoundError(
            f"Berkas ini tampaknya laporan {other.record_type}, bukan {schema.record_type}: "
            f"judul kolomnya cocok dengan laporan {other.record_type}. Pilih jenis laporan "
            f"{other.record_type} lalu unggah ulang."
        )
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
