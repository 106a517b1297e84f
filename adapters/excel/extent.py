"""How large a grid an .xlsx worksheet makes calamine allocate, checked before it does.

calamine reads a worksheet's cells and then allocates one dense grid spanning the first to
the last used row and column (32 bytes a cell). Two cells, `A1` and `XFD1048576`, in a
1 KB file ask for 512 GiB: the allocation fails and Rust aborts the whole process (no
exception a caller could catch). `check_extent` streams each worksheet part once and bounds
that grid before calamine opens the file:

- the part is read in 1 MB blocks cut before their last `<`, so that no tag straddles two;
- one regular-expression search per block finds the next cell tag that is not of the plain
  form `<c r="AB12" s="1" t="n">` (reference first, no second `r`) with a column up to the
  largest seen and a row up to the row bound seen so far (the bound moves by digit count and
  first digit: 150,000 gives 199,999); a plain cell beyond moves the bounds, so an ordinary
  sheet is scanned once at C speed and stops only a few dozen times. Row tags do not matter
  then: calamine places a cell with a reference by that reference;
- a second search finds tags with a namespace prefix (`<x:c>`, `<x:row>`), which calamine
  reads as cells and rows too;
- the grid is then at most that many columns by that many rows; when that fits the allowance
  nothing more is done;
- otherwise, and whenever a cell is not plain (no reference, or not first, a second `r`
  (calamine keeps the last), single quotes, a prefixed tag, a reference in another form),
  every position is computed as calamine does and the exact grid is compared with the
  allowance.

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
_WORKSHEET: Final = re.compile(r"xl/worksheets/[^/]+\.xml", re.IGNORECASE)
#: A column past ZZZ, the last one a plain reference can name.
_LAST_COLUMN: Final = 18_278

#: A plain cell tag's start: `<c`, its reference first (a second `r` is found apart).
_PLAIN_CELL: Final = re.compile(rb'<c r="([A-Z]{1,3})([1-9][0-9]{0,6})"(?=[\s/>])')
#: A tag name ending in `:c`/`:row`? (`<x:c>`: calamine reads it as a cell or row.)
_PREFIXED: Final = re.compile(rb":(?:c|row)(?=[\s/>])")
#: An `r` attribute other than a plain cell's or row's first one (calamine keeps a cell's
#: last `r`)? Also `r=` in text, found harmless.
_OTHER_R: Final = re.compile(rb"r\s*+=(?<!<c r=)(?<!<row r=)")
_TAG_NAME: Final = re.compile(rb'[^\s<>/!?="\']*')
#: Suspects found harmless in a part (`r=` or `:c ` in text) before the scan gives up.
_MAX_HARMLESS: Final = 1_000_000

#: Column steps followed one by one before the column bound jumps to the last column.
_MAX_COLUMN_STEPS: Final = 500
_TOKEN: Final = re.compile(rb"""<(?:[^\s<>/!?="']*:)?(c|row)\b((?:[^<>"']|"[^<"]*"|'[^<']*')*)>""")
_TOKEN_START: Final = re.compile(rb"<(?:[^\s<>/!?=\"']*:)?(?:c|row)\b")
_ATTRIBUTE: Final = re.compile(rb"""([^\s=<>/"']+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF_VALUE: Final = re.compile(rb"([A-Za-z]*)([0-9]+)")

TOO_WIDE: Final = (
    "Lembar kerja di berkas ini terlalu besar atau selnya tersebar sangat jauh (misalnya satu "
    "sel di A1 dan satu di baris terakhir Excel). Hapus baris dan kolom kosong di luar data, "
    "simpan ulang, lalu unggah lagi."
)


def _at_most(text: str, alphabet: str, lowest: str) -> str:
    """A regular expression of the strings over `alphabet` (ordered) whose first character
    is at least `lowest`, and that are as long as `text` and not above it, or shorter."""
    full = f"[{alphabet[0]}-{alphabet[-1]}]"
    choices = []
    for i, char in enumerate(text):
        first = lowest if i == 0 else alphabet[0]
        rest = len(text) - i - 1
        tail = f"{full}{{{rest}}}" if rest else ""
        if text[i + 1 :] == alphabet[-1] * rest:  # the rest can be anything: one choice ends
            choices.append(f"{text[:i]}[{first}-{char}]{tail}")
            break
        if char > first:
            below = alphabet[alphabet.index(char) - 1]
            choices.append(f"{text[:i]}[{first}-{below}]{tail}")
    if len(text) > 1:
        choices.append(f"[{lowest}-{alphabet[-1]}]{full}{{0,{len(text) - 2}}}")
    return "|".join(choices)


@functools.lru_cache(maxsize=1024)
def _beyond(column: int, row_bound: int) -> re.Pattern[bytes]:
    """Cell tags other than plain ones of a column up to `column` and a row up to
    `row_bound`."""
    if column and row_bound:
        letters = _at_most(column_letters(min(column, _LAST_COLUMN)), _LETTERS, "A")
        digits = _at_most(str(row_bound), "0123456789", "1")
        plain = _PLAIN_CELL.pattern.replace(
            b"([A-Z]{1,3})([1-9][0-9]{0,6})", f"(?:{letters})(?:{digits})".encode()
        )
        return re.compile(rb"<c(?!" + plain[2:] + rb")(?=[\s/>])")
    return re.compile(rb"<c(?=[\s/>])")


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
        if _quick_bound(_blocks(archive, member)) > allowed:
            rows, columns = _exact_grid(_blocks(archive, member))
            if rows * columns > allowed:
                raise UnreadableFileError(TOO_WIDE)


def _blocks(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Iterator[tuple[bytes, int]]:
    """The part's bytes in blocks of about 1 MB, as (bytes, end): `bytes[:end]` stops before
    the last `<`, whose tag starts the next block (a block without `<` is given whole)."""
    rest = b""
    try:
        with archive.open(member) as part:
            while block := part.read(_BLOCK):
                text = rest + block
                end = text.rfind(b"<")
                if end <= 0:
                    end = len(text)
                yield text, end
                rest = text[end:]
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
    if rest:
        yield rest, len(rest)


def _quick_bound(blocks: Iterator[tuple[bytes, int]]) -> int:
    """An upper bound of the grid: the largest column by the bound of the largest row;
    `MAX_ROWS * MAX_COLUMNS` when some cell is not plain or some tag has a prefix."""
    column, row_bound, steps, harmless = 0, 0, 0, 0
    for text, end in blocks:
        found_harmless = _harmless_suspects(text, end)
        harmless += found_harmless
        if found_harmless < 0 or harmless > _MAX_HARMLESS:
            return MAX_ROWS * MAX_COLUMNS
        position = 0
        while (found := _beyond(column, row_bound).search(text, position, end)) is not None:
            cell = _PLAIN_CELL.match(text, found.start(), end)
            if cell is None:  # no reference, not first, another form: count exactly
                return MAX_ROWS * MAX_COLUMNS
            steps += 1
            seen = column_number(cell.group(1))
            column = _LAST_COLUMN if steps > _MAX_COLUMN_STEPS else max(column, seen)
            row_bound = max(row_bound, _row_bound(int(cell.group(2))))
            position = cell.end()
    return max(column, 1) * max(min(row_bound, MAX_ROWS), 1)


def _harmless_suspects(text: bytes, end: int) -> int:
    """How many `_PREFIXED` and `_OTHER_R` found in `text[:end]` are harmless (in text, or
    in a tag other than a cell); -1 when one is a prefixed tag name (`<x:c`, `<x:row`) or an
    `r` in a cell tag (or in text right inside a cell: counted too)."""
    count = 0
    for pattern in (_PREFIXED, _OTHER_R):
        after, in_cell = 0, False
        for found in pattern.finditer(text, 0, end):
            # The innermost tag opened at the last `<`; none since the previous one: the same.
            start = text.rfind(b"<", after, found.start())
            if start >= 0:
                name = _TAG_NAME.match(text, start + 1, end)
                if name is None or (pattern is _PREFIXED and name.end() == found.end()):
                    return -1  # `<x:c` or `<x:row` (a name may be empty: never None)
                in_cell = name.group() == b"c" or name.group().endswith(b":c")
            if in_cell and pattern is _OTHER_R:
                return -1
            after = found.start()
            count += 1
    return count


def _exact_grid(blocks: Iterator[tuple[bytes, int]]) -> tuple[int, int]:
    """(rows, columns) of the grid calamine allocates: from the first to the last position
    of any cell, numbering cells and rows without a reference after their predecessor."""
    row, column = 0, 0
    low_row = low_col = None
    high_row = high_col = 0
    rest = b""
    for block, block_end in blocks:
        text = rest + block[:block_end]
        end = 0
        for token in _TOKEN.finditer(text):
            end = token.end()
            ref = _last_reference(token.group(2))
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
        rest = text[end:]  # an unfinished tag waits for the next block
        if len(rest) > _BLOCK and _TOKEN_START.search(rest):
            return MAX_ROWS, MAX_COLUMNS  # a tag longer than a block: no position is certain
        rest = rest[-_BLOCK:]
    if low_row is None or low_col is None:
        return 0, 0
    return high_row - low_row + 1, high_col - low_col + 1


def _last_reference(attributes: bytes) -> re.Match[bytes] | None:
    """The value of the last `r` attribute, as calamine reads it (letters, digits)."""
    value = None
    for attribute in _ATTRIBUTE.finditer(attributes):
        if attribute.group(1) == b"r":
            value = attribute.group(2) if attribute.group(2) is not None else attribute.group(3)
    return _REF_VALUE.fullmatch(value) if value is not None else None
