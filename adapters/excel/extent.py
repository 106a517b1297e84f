"""How large a grid an .xlsx worksheet makes calamine allocate, checked before it does.

calamine reads a worksheet's cells and then allocates one dense grid spanning the first to
the last used row and column (32 bytes a cell). Two cells, `A1` and `XFD1048576`, in a
1 KB file ask for 512 GiB: the allocation fails and Rust aborts the whole process (no
exception a caller could catch). `check_extent` streams each worksheet part once and bounds
that grid before calamine opens the file:

- one regular-expression search per 1 MB block finds the next cell or row reference
  (`r="AB12"`, `r="12"`) beyond the largest column and the row bound seen so far (the row
  bound moves by digit count and first digit: 150,000 gives 199,999), so an ordinary sheet is
  scanned once at C speed and stops only a few dozen times;
- the grid is then at most that many columns by that many rows; when that fits the allowance
  nothing more is done;
- otherwise, and whenever a cell or row carries no leading `r=` (calamine then numbers it
  after its predecessor), every position is computed as calamine does and the exact grid is
  compared with the allowance.

The allowance is `max_cells`, and never less than what the part's own size can fill
(a quarter of a cell per byte of XML, `MIN_CELLS` at least): a large, dense, honest sheet
always passes; a small file whose few cells sit far apart does not.
"""

from __future__ import annotations

import functools
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import Final

from hub.errors import UnreadableFileError

#: Grid allowed to any worksheet whatever its size: 4,000,000 cells (128 MB in calamine).
MIN_CELLS: Final = 4_000_000
#: Bytes of worksheet XML that earn one more cell of grid beyond MIN_CELLS.
BYTES_PER_CELL: Final = 4
#: Largest grid of any worksheet: 50,000,000 cells (1.6 GB in calamine), 1,000,000 rows of
#: 50 columns.
DEFAULT_MAX_CELLS: Final = 50_000_000

MAX_ROWS: Final = 1_048_576
MAX_COLUMNS: Final = 16_384

_BLOCK: Final = 1 << 20
_OVERLAP: Final = 64  # a reference or tag cut at a block boundary is seen in the next one
_WORKSHEET: Final = re.compile(r"xl/worksheets/[^/]+\.xml", re.IGNORECASE)
#: A cell or row whose first attribute is not its reference: numbered after its predecessor.
_UNNUMBERED: Final = re.compile(rb'<(?:c|row)(?=[\s\S]{4})(?! r=")(?=[\s/>])')
#: A reference in another form than `AB12` (lower case, a leading zero, too long), which
#: calamine might read as a far position.
_ODD_REF: Final = rb'(?![A-Z]{0,3}[1-9][0-9]{0,6}")(?=[^"<>]*")'

#: Column steps followed one by one before the column bound jumps to Excel's last column.
_MAX_COLUMN_STEPS: Final = 500
_TOKEN: Final = re.compile(rb"<(c|row)\b([^>]*)>")
_REF: Final = re.compile(rb' r="([A-Z]{0,3})([1-9][0-9]{0,6})"')
_REF_ANYWHERE: Final = re.compile(rb'(?:^|\s)r="([A-Za-z]*)([0-9]+)"')

TOO_WIDE: Final = (
    "Lembar kerja di berkas ini terlalu besar atau selnya tersebar sangat jauh (misalnya satu "
    "sel di A1 dan satu di baris terakhir Excel). Hapus baris dan kolom kosong di luar data, "
    "simpan ulang, lalu unggah lagi."
)


def _greater(text: str, alphabet: str, lowest: str) -> list[str]:
    """Regular expressions of the strings of `text`'s length above it, over `alphabet`
    (ordered), whose first character is at least `lowest`."""
    choices = []
    for i, char in enumerate(text):
        above = alphabet[alphabet.index(char) + 1 :]
        if i == 0:
            above = "".join(c for c in above if c >= lowest)
        if above:
            rest = len(text) - i - 1
            tail = f"[{alphabet[0]}-{alphabet[-1]}]{{{rest}}}" if rest else ""
            choices.append(f"{text[:i]}[{above[0]}-{above[-1]}]{tail}")
    return choices


@functools.lru_cache(maxsize=1024)
def _beyond(column: int, row_bound: int) -> re.Pattern[bytes]:
    """References of a column after `column` (0: any) or a row above `row_bound`."""
    letters = column_letters(column) if column else ""
    columns = _greater(letters, _LETTERS, "A") if letters else []
    if len(letters) < 3:
        columns.append(f"[A-Z]{{{len(letters) + 1},3}}")
    digits = str(row_bound)
    rows = _greater(digits, "0123456789", "1")
    if len(digits) < 7:
        rows.append(f"[1-9][0-9]{{{len(digits)},6}}")
    choices = [f"(?:{'|'.join(columns)})[0-9]{{1,7}}"] if columns and column < MAX_COLUMNS else []
    if rows:
        choices.append(f"[A-Z]{{0,3}}(?:{'|'.join(rows)})")
    beyond = f'(?:{"|".join(choices)})"'.encode() if choices else b"(?!)"
    return re.compile(b' r="(?:' + beyond + b"|" + _ODD_REF + b")")


_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def column_letters(number: int) -> str:
    """1 -> "A", 28 -> "AB"."""
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = _LETTERS[rest] + letters
    return letters


def _row_bound(row: int) -> int:
    """`row` rounded up past its first digit: 150000 -> 199999, 7 -> 7, 12 -> 19."""
    digits = str(row)
    return int(digits[0] + "9" * (len(digits) - 1))


def column_number(letters: bytes) -> int:
    """`b"A"` -> 1, `b"AB"` -> 28, `b""` -> 0."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def check_extent(archive: zipfile.ZipFile, max_cells: int = DEFAULT_MAX_CELLS) -> None:
    """Raise `UnreadableFileError` when a worksheet of `archive` spans too large a grid."""
    for member in archive.infolist():
        if not _WORKSHEET.fullmatch(member.filename):
            continue
        allowed = min(max_cells, max(MIN_CELLS, member.file_size // BYTES_PER_CELL))
        if _quick_bound(_blocks(archive, member, _OVERLAP)) > allowed:
            rows, columns = _exact_grid(_blocks(archive, member, 0))
            if rows * columns > allowed:
                raise UnreadableFileError(TOO_WIDE)


def _blocks(archive: zipfile.ZipFile, member: zipfile.ZipInfo, overlap: int) -> Iterator[bytes]:
    """The part's bytes in blocks, each starting with the last `overlap` bytes of the one
    before."""
    tail = b""
    try:
        with archive.open(member) as part:
            while block := part.read(_BLOCK):
                yield tail + block
                tail = block[-overlap:] if overlap else b""
    except (
        zipfile.BadZipFile,
        EOFError,
        OSError,
        ValueError,
        zlib.error,  # deflate data that does not inflate
        NotImplementedError,  # a compression method zipfile cannot open
        RuntimeError,  # an encrypted member
    ) as exc:
        raise UnreadableFileError(
            "Berkas Excel ini rusak (isi arsip ZIP tidak utuh). Buka di Excel, simpan ulang, "
            "lalu unggah lagi."
        ) from exc


def _quick_bound(blocks: Iterator[bytes]) -> int:
    """An upper bound of the grid: the largest column by the bound of the largest row;
    `MAX_ROWS * MAX_COLUMNS` when some cell or row has no leading reference."""
    column, row_bound, steps = 0, 0, 0
    for block in blocks:
        if _UNNUMBERED.search(block):
            return MAX_ROWS * MAX_COLUMNS
        while (found := _beyond(column, row_bound).search(block)) is not None:
            ref = _REF.match(block, found.start())
            if ref is None:  # leading zeros, lower case, too long: number as calamine does
                return MAX_ROWS * MAX_COLUMNS
            if ref.group(1):
                steps += 1
                seen = column_number(ref.group(1))
                column = MAX_COLUMNS if steps > _MAX_COLUMN_STEPS else max(column, seen)
            row_bound = max(row_bound, _row_bound(int(ref.group(2))))
            if column >= MAX_COLUMNS and row_bound >= MAX_ROWS:
                break
    return max(column, 1) * max(min(row_bound, MAX_ROWS), 1)


def _exact_grid(blocks: Iterator[bytes]) -> tuple[int, int]:
    """(rows, columns) of the grid calamine allocates: from the first to the last position
    of any cell, numbering cells and rows without a reference after their predecessor."""
    row, column = 0, 0
    low_row = low_col = None
    high_row = high_col = 0
    rest = b""
    for block in blocks:
        text = rest + block
        end = 0
        for token in _TOKEN.finditer(text):
            end = token.end()
            ref = _REF_ANYWHERE.search(token.group(2))
            if token.group(1) == b"row":
                row = int(ref.group(2)) if ref else row + 1
                column = 0
                continue
            if ref and ref.group(1):
                column = column_number(ref.group(1))
                row = int(ref.group(2))
            else:
                column += 1
            low_row = row if low_row is None else min(low_row, row)
            low_col = column if low_col is None else min(low_col, column)
            high_row, high_col = max(high_row, row), max(high_col, column)
        rest = text[end:][-_BLOCK:]  # an unfinished tag waits for the next block
    if low_row is None or low_col is None:
        return 0, 0
    return high_row - low_row + 1, high_col - low_col + 1
