"""Read a CSV file row by row, as text, with its line numbers.

Files reach the hub from many offices: `;`-separated from Indonesian-locale Excel, often with
a UTF-8 BOM, `,`-separated from other tools, older ones in Windows-1252, sometimes with title
rows above the header. `CSVSource` guesses what it must and keeps everything else as it is:

- Encoding, unless configured: a UTF-16 BOM means UTF-16; otherwise the whole file (after a
  UTF-8 BOM, which is dropped) is decoded as UTF-8 in 1 MB blocks with an incremental decoder
  (nothing is kept in memory). An invalid byte means Windows-1252 (its five undefined bytes
  become U+FFFD), unless the file has a UTF-8 BOM or also holds valid multi-byte UTF-8
  sequences: then it is UTF-8 with Windows-1252 lines pasted in, and each physical line is
  decoded on its own, as UTF-8 when it is valid UTF-8 and as Windows-1252 otherwise
  (`MIXED_ENCODING`, a codec this module registers; still streamed).
- Delimiter, unless configured: the first 50 non-blank records of the first 64 KB are parsed
  with each of `;` `,` tab `|`; the winner is the one whose most common field count (above 1)
  occurs on the most lines, so title rows such as "LAPORAN KELAHIRAN BULAN JULI 2025" and
  commas inside quoted names do not mislead it. Ties go to the larger field count, then to
  the order above.
- Rows are parsed by the stdlib `csv` module streaming over the file. Every cell stays a `str`
  exactly as written; rows whose cells are all empty or whitespace are skipped; ragged rows
  are yielded as they are (the pipeline reports them). `Provenance.row` is the physical line
  on which the record starts, so a quoted cell spanning lines does not shift later numbers.
- A quote that is opened and never closed makes the csv module read the rest of the file as
  one cell, so rows would silently disappear: the end of the file inside a quoted cell stops
  the read with `UnreadableFileError` naming the line where the quote opens. So does a quoted
  cell spanning at least five lines of which at least three hold three delimiters each (whole
  rows swallowed by a stray quote that a later quote closes); a real multi-line address does
  not look like that.
- A cell longer than `max_cell_bytes` characters (bytes, for ASCII text), or a physical line
  longer than eight times that, stops the read with `UnreadableFileError`, so a broken file
  cannot fill memory. `csv.field_size_limit` is process-wide: sources that run at the same
  time should share one `max_cell_bytes`.

Every problem with the file as a whole raises `hub.errors.UnreadableFileError` with a one-line
message for the operator, in Indonesian. Files are always read whole: `bookmark` is ignored.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Final, TextIO

from adapters.base import Source
from hub.errors import ConfigError, UnreadableFileError
from hub.records import Provenance, RawRow

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

DELIMITERS: Final = (";", ",", "\t", "|")
DEFAULT_MAX_CELL_BYTES: Final = 1_000_000
#: UTF-8 with Windows-1252 lines pasted in: each physical line is decoded as UTF-8 when it is
#: valid UTF-8, as Windows-1252 otherwise. A codec name, usable as the `encoding` setting too.
MIXED_ENCODING: Final = "utf-8+cp1252"

_BLOCK: Final = 1 << 20  # encoding pre-pass reads this much at a time
_SNIFF_CHARS: Final = 64 * 1024  # text sampled for the delimiter
_SNIFF_RECORDS: Final = 50  # non-blank records compared per delimiter
_HEAD: Final = 8 * 1024  # bytes checked for binary content
_LINE_FACTOR: Final = 8  # a physical line may hold this many maximal cells
# MIXED_ENCODING decodes a longer line in pieces. Holding back little keeps the bytes per
# character that TextIOWrapper.read(n) extrapolates its next read from near 1 (at most 2).
_MAX_PENDING: Final = 4 * 1024
_BREAK: Final = re.compile(r"\r\n|\r|\n")  # what ends a physical line (newline="")
# A quoted cell spanning _SWALLOW_BREAKS + 1 lines or more, of which _SWALLOWED_ROWS or more
# hold _ROW_DELIMITERS delimiters or more, is rows swallowed by a stray quote.
_SWALLOW_BREAKS: Final = 4
_SWALLOWED_ROWS: Final = 3
_ROW_DELIMITERS: Final = 3
_FIX_QUOTE: Final = "Perbaiki tanda kutipnya lalu unggah ulang."

_ACCEPTED: Final = "Unggah laporan dalam format .xlsx, .xls, .ods atau .csv."


def _not_a_report(kind: str) -> str:
    """For a file that is neither a workbook nor text, whatever its name promised."""
    return f"Berkas ini {kind}, bukan lembar kerja Excel atau CSV. {_ACCEPTED}"


#: Magic bytes of formats that operators upload by mistake. The hub gives workbooks to the
#: Excel adapter and everything else to this one, whatever the file's name (.csv or .xlsx).
_BINARY_MAGIC: Final = (
    (
        b"PK\x03\x04",
        "Berkas ini bukan CSV (terdeteksi format ZIP/Excel). Unggah berkas .xlsx sebagai "
        "Excel atau simpan ulang sebagai CSV.",
    ),
    (b"PK\x05\x06", _not_a_report("arsip ZIP kosong")),
    (
        bytes.fromhex("d0cf11e0a1b11ae1"),
        "Berkas ini bukan CSV (terdeteksi format Excel lama/Office). Unggah berkas .xls "
        "sebagai Excel atau simpan ulang sebagai CSV.",
    ),
    (b"\x89PNG\r\n\x1a\n", _not_a_report("gambar PNG")),
    (b"\xff\xd8\xff", _not_a_report("gambar JPEG")),
    (b"GIF8", _not_a_report("gambar GIF")),
    (b"%PDF", _not_a_report("PDF")),
    (b"Rar!\x1a\x07", _not_a_report("arsip RAR")),
    (b"7z\xbc\xaf\x27\x1c", _not_a_report("arsip 7-Zip")),
    (b"\x1f\x8b", _not_a_report("arsip GZIP")),
)


class _LineTooLongError(Exception):
    """A physical line exceeded the line limit (internal; becomes UnreadableFileError)."""


class CSVSource(Source):
    """Yields every non-blank row of one CSV file as strings, with its starting line number.

    ```python
    source = CSVSource({"path": "uploads/lahir_juli.csv"})
    for row in source.read():
        print(row.provenance.position, row.cells)  # line 4 ('3273010101900001', 'Budi', ...)
    ```

    Config keys: `path` (required), `encoding` (any Python codec name or `MIXED_ENCODING`;
    detected when absent), `delimiter` (one character; detected when absent), `max_cell_bytes`
    (default 1,000,000).
    """

    name: ClassVar[str] = "csv"
    is_report: ClassVar[bool] = True
    config_schema: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "CSV file to read"},
            "encoding": {
                "type": "string",
                "minLength": 1,
                "description": "Python codec name, or utf-8+cp1252 (UTF-8 lines with "
                "Windows-1252 lines among them); detected (UTF-8/BOM, UTF-16 BOM, cp1252, "
                "utf-8+cp1252) when absent",
            },
            "delimiter": {
                "type": "string",
                "minLength": 1,
                "maxLength": 1,
                "description": "field separator; detected among ; , tab | when absent",
            },
            "max_cell_bytes": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_CELL_BYTES,
                "description": "largest cell accepted, in characters",
            },
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.path = Path(config["path"])
        self.encoding: str | None = config.get("encoding")
        self.delimiter: str | None = config.get("delimiter")
        self.max_cell_bytes = int(config.get("max_cell_bytes", DEFAULT_MAX_CELL_BYTES))
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError as exc:
                raise ConfigError(f"csv: unknown encoding {self.encoding!r}") from exc

    def read(self, bookmark: str | None = None) -> Iterator[RawRow]:
        """Check the file, detect encoding and delimiter now, then stream its rows.

        Problems with the file as a whole raise here; a bad cell raises while iterating.
        """
        check_file(self.path)
        encoding = self.encoding or detect_encoding(self.path)
        delimiter = self.delimiter or detect_delimiter(self.path, encoding)
        return self._rows(encoding, delimiter)

    def _rows(self, encoding: str, delimiter: str) -> Iterator[RawRow]:
        csv.field_size_limit(self.max_cell_bytes)
        locator = self.path.name
        line_limit = self.max_cell_bytes * _LINE_FACTOR
        last_line = 0  # physical line on which the previous record ended
        found = False
        with _open_text(self.path, encoding) as file:
            lines = _Lines(file, line_limit)
            reader = csv.reader(lines, delimiter=delimiter)
            try:
                for cells in reader:
                    start, last_line = last_line + 1, reader.line_num
                    if last_line - start >= _SWALLOW_BREAKS or lines.ended:
                        _check_quotes(cells, start, last_line, delimiter, lines.ended)
                    if "".join(cells).strip():  # a row of blank cells is no row
                        found = True
                        provenance = Provenance("csv", locator, start, "")
                        yield RawRow(tuple(cells), provenance)
            except csv.Error as exc:
                raise UnreadableFileError(
                    _cell_error(str(exc), last_line + 1, self.max_cell_bytes)
                ) from exc
            except _LineTooLongError as exc:
                raise UnreadableFileError(
                    f"Baris {reader.line_num + 1} terlalu panjang (lebih dari "
                    f"{_size(line_limit)}). Berkas ini mungkin rusak: periksa baris itu, "
                    "simpan ulang sebagai CSV, lalu unggah lagi."
                ) from exc
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(_encoding_message(encoding)) from exc
        if not found:
            raise UnreadableFileError(_empty_message(self.path))


def check_file(path: Path) -> None:
    """Raise `UnreadableFileError` if `path` is missing, empty or clearly not text."""
    if not path.is_file():
        raise UnreadableFileError(
            f"Berkas {path.name} tidak ditemukan. Periksa nama dan lokasinya, lalu unggah ulang."
        )
    with path.open("rb") as file:
        head = file.read(_HEAD)
    if not head:
        raise UnreadableFileError(_empty_message(path))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return  # UTF-16 text is full of NUL bytes
    for magic, message in _BINARY_MAGIC:
        if head.startswith(magic):
            raise UnreadableFileError(message)
    if b"\x00" in head:
        raise UnreadableFileError(_not_a_report("berisi data biner"))


def detect_encoding(path: Path) -> str:
    """Return "utf-8-sig", "utf-16", "utf-8", "cp1252" or `MIXED_ENCODING`.

    Reads `path` in 1 MB blocks; a file that is not valid UTF-8 is read a second time, up to
    its first valid multi-byte UTF-8 sequence (one with a UTF-8 BOM is mixed at once).
    """
    with path.open("rb") as file:
        head = file.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        bom = head.startswith(codecs.BOM_UTF8)
        file.seek(len(codecs.BOM_UTF8) if bom else 0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := file.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            if bom:  # it says UTF-8, and Windows-1252 lines were pasted in
                return MIXED_ENCODING
            file.seek(0)
            return MIXED_ENCODING if _holds_utf8_sequence(file) else "cp1252"
    return "utf-8-sig" if bom else "utf-8"


def _holds_utf8_sequence(file: BinaryIO) -> bool:
    """Whether the rest of `file` holds a valid multi-byte UTF-8 sequence.

    Decoded as UTF-8 with "surrogateescape", every ASCII or invalid byte becomes one
    character and every valid multi-byte sequence one character for two to four bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    chars = size = 0
    while block := file.read(_BLOCK):
        chars += len(decoder.decode(block))
        size += len(block)
        if chars + len(decoder.getstate()[0]) < size:  # held back: a sequence's first bytes
            return True
    return chars + len(decoder.decode(b"", final=True)) < size


def _decode_lines(data: bytes) -> str:
    """`data` (whole lines) decoded line by line: UTF-8 where valid, else Windows-1252."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    view = memoryview(data)
    parts: list[str] = []
    done = 0  # data[:done] is decoded; data[done:bad] is valid UTF-8
    while True:
        begin = max(data.rfind(b"\n", done, bad), data.rfind(b"\r", done, bad), done - 1) + 1
        end = min(
            (i for i in (data.find(b"\n", bad), data.find(b"\r", bad)) if i >= 0), default=len(data)
        )
        parts.append(str(view[done:begin], "utf-8"))
        parts.append(str(view[begin:end], "cp1252", "replace"))
        done = end
        try:
            parts.append(str(view[done:], "utf-8"))
        except UnicodeDecodeError as exc:
            bad = done + exc.start
        else:
            return "".join(parts)


class _MixedDecoder(codecs.IncrementalDecoder):
    """The incremental decoder of `MIXED_ENCODING`: decodes whole lines, holds the last part.

    A leading UTF-8 BOM is dropped. A line longer than 4 KB is decoded in pieces (cut between
    UTF-8 sequences), so memory stays bounded on a file without line breaks.
    """

    def __init__(self, errors: str = "strict") -> None:
        super().__init__(errors)
        self._pending = b""
        self._fresh = True  # nothing decoded yet: a BOM may come

    def decode(self, input: ReadableBuffer, final: bool = False) -> str:
        data = self._pending + input
        if self._fresh:
            if len(data) < len(codecs.BOM_UTF8) and not final:
                self._pending = data
                return ""
            self._fresh = False
            if data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
        cut = len(data)
        if not final:
            cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
            if len(data) - cut > _MAX_PENDING:  # a very long line: decode what came of it
                cut = len(data)
                while cut > len(data) - 3 and 0x80 <= data[cut - 1] < 0xC0:
                    cut -= 1  # continuation bytes: the sequence may go on in the next input
                if data[cut - 1] >= 0xC0:
                    cut -= 1  # its first byte
        self._pending = data[cut:]
        return _decode_lines(data[:cut]) if cut else ""

    def reset(self) -> None:
        self._pending = b""
        self._fresh = True

    def getstate(self) -> tuple[bytes, int]:
        return (self._pending, int(self._fresh))

    def setstate(self, state: tuple[bytes, int]) -> None:
        self._pending, self._fresh = state[0], bool(state[1])


def _mixed_decode(data: ReadableBuffer, errors: str = "strict") -> tuple[str, int]:
    data = bytes(data)
    return _MixedDecoder(errors).decode(data, final=True), len(data)


def _find_codec(name: str) -> codecs.CodecInfo | None:
    if re.sub(r"[^a-z0-9]", "", name.lower()) != "utf8cp1252":
        return None
    return codecs.CodecInfo(
        codecs.utf_8_encode,
        _mixed_decode,
        name=MIXED_ENCODING,
        incrementalencoder=codecs.getincrementalencoder("utf-8"),
        incrementaldecoder=_MixedDecoder,
    )


codecs.register(_find_codec)


def detect_delimiter(path: Path, encoding: str) -> str:
    """Return the delimiter that splits the first records of `path` most consistently.

    Raises `UnreadableFileError` when the file holds only blank lines.
    """
    with _open_text(path, encoding) as file:
        try:
            sample = file.read(_SNIFF_CHARS)
            at_end = not file.read(1)
        except UnicodeDecodeError as exc:
            raise UnreadableFileError(_encoding_message(encoding)) from exc
    if not at_end:  # drop the incomplete last line
        cut = max(sample.rfind("\n"), sample.rfind("\r"))
        sample = sample[: cut + 1] if cut > 0 else sample
    if at_end and not sample.strip():
        raise UnreadableFileError(_empty_message(path))
    scores = {d: _consistency(_sample_records(sample, d)) for d in DELIMITERS}
    # max() keeps the first of equal scores, so DELIMITERS order breaks the last ties.
    return max(DELIMITERS, key=lambda d: scores[d])


def _open_text(path: Path, encoding: str) -> TextIO:
    """Open for the csv module: UTF-8 also drops a BOM, cp1252 replaces undefined bytes."""
    codec = codecs.lookup(encoding).name
    if codec == "utf-8":
        encoding = "utf-8-sig"  # decodes plain UTF-8 too
    errors = "replace" if codec == "cp1252" else "strict"
    return path.open(encoding=encoding, errors=errors, newline="")


def _sample_records(sample: str, delimiter: str) -> list[list[str]]:
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append(cells)
                if len(records) == _SNIFF_RECORDS:
                    break
    except csv.Error:
        pass  # a sample cut inside a huge cell: judge by the records read so far
    return records


def _consistency(records: list[list[str]]) -> tuple[int, int]:
    """(lines sharing the most common field count above 1, that field count)."""
    counts = Counter(len(cells) for cells in records if len(cells) > 1)
    if not counts:
        return (0, 0)
    width, lines = max(counts.items(), key=lambda item: (item[1], item[0]))
    return (lines, width)


class _Lines:
    """The physical lines of `file` for the csv module; `_LineTooLongError` past `limit`.

    `ended` turns true once the file is read to its end. The csv module (not strict) asks for
    a line past the last one within a record only inside a quoted cell, and then returns that
    record anyway: a record that comes after `ended` had its quote cut off by the end of file.
    """

    __slots__ = ("_file", "_limit", "ended")

    def __init__(self, file: TextIO, limit: int) -> None:
        self._file = file
        self._limit = limit
        self.ended = False

    def __iter__(self) -> Iterator[str]:
        file, limit = self._file, self._limit
        while line := file.readline(limit):
            if len(line) == limit and not line.endswith(("\n", "\r")):
                raise _LineTooLongError
            yield line
        self.ended = True


def _check_quotes(cells: list[str], start: int, end: int, delimiter: str, at_end: bool) -> None:
    """Raise `UnreadableFileError` if a quote swallowed lines of the record on lines start-end.

    Called only for records that span many lines or end the file (see `_Lines`).
    """
    line = start  # where the current cell starts
    if at_end:  # the last cell's quote was never closed
        if not cells[-1].strip():
            return  # a lone quote that swallowed nothing
        for cell in cells[:-1]:
            line += len(_BREAK.findall(cell))
        if line < end:
            raise UnreadableFileError(
                f'Baris {line}: tanda kutip (") dibuka tetapi tidak ditutup, sehingga baris '
                f"{line} sampai {end} terbaca sebagai satu sel. {_FIX_QUOTE}"
            )
        raise UnreadableFileError(
            f'Baris {line}: tanda kutip (") dibuka tetapi tidak ditutup sampai akhir berkas. '
            f"{_FIX_QUOTE}"
        )
    for cell in cells:
        breaks = len(_BREAK.findall(cell))
        if breaks >= _SWALLOW_BREAKS:
            pieces = _BREAK.split(cell)
            rows = sum(piece.count(delimiter) >= _ROW_DELIMITERS for piece in pieces)
            if rows >= _SWALLOWED_ROWS:
                raise UnreadableFileError(
                    f'Baris {line}: tanda kutip (") dibuka tetapi baru ditutup di baris '
                    f"{line + breaks}, sehingga baris {line} sampai {line + breaks} terbaca "
                    f"sebagai satu sel. {_FIX_QUOTE}"
                )
        line += breaks


def _cell_error(detail: str, line: int, max_cell: int) -> str:
    if "field larger than field limit" in detail:
        return (
            f"Baris {line} berisi sel yang terlalu besar (lebih dari {_size(max_cell)}). "
            "Berkas ini mungkin rusak atau tanda kutipnya tidak tertutup: periksa baris itu, "
            "simpan ulang sebagai CSV, lalu unggah lagi."
        )
    if "NUL" in detail:
        return (
            f"Baris {line} berisi karakter NUL: berkas ini rusak atau bukan teks. Simpan "
            "ulang sebagai CSV, lalu unggah lagi."
        )
    return (
        f"Baris {line} tidak dapat dibaca sebagai CSV ({detail}). Simpan ulang sebagai CSV, "
        "lalu unggah lagi."
    )


def _encoding_message(encoding: str) -> str:
    return (
        f"Berkas tidak dapat dibaca dengan encoding {encoding}. Hapus pengaturan encoding agar "
        "dideteksi otomatis, atau simpan ulang sebagai CSV UTF-8, lalu unggah lagi."
    )


def _empty_message(path: Path) -> str:
    return (
        f"Berkas {path.name} kosong (tidak ada baris berisi data). Periksa isinya, simpan "
        "ulang, lalu unggah lagi."
    )


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g} MB"
    if n >= 1_000:
        return f"{n / 1_000:g} KB"
    return f"{n} byte"
