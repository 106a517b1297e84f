"""Read a CSV file row by row, as text, with its line numbers.

Files reach the hub from many offices: `;`-separated from Indonesian-locale Excel, often with
a UTF-8 BOM, `,`-separated from other tools, older ones in Windows-1252, sometimes with title
rows above the header. `CSVSource` guesses what it must and keeps everything else as it is:

- Encoding, unless configured: a UTF-8 BOM means UTF-8 (the BOM is dropped), a UTF-16 BOM
  means UTF-16; otherwise the whole file is decoded as UTF-8 in 1 MB blocks with an
  incremental decoder (nothing is kept in memory), and the first invalid byte means
  Windows-1252 (its five undefined bytes become U+FFFD).
- Delimiter, unless configured: the first 50 non-blank records of the first 64 KB are parsed
  with each of `;` `,` tab `|`; the winner is the one whose most common field count (above 1)
  occurs on the most lines, so title rows such as "LAPORAN KELAHIRAN BULAN JULI 2025" and
  commas inside quoted names do not mislead it. Ties go to the larger field count, then to
  the order above.
- Rows are parsed by the stdlib `csv` module streaming over the file. Every cell stays a `str`
  exactly as written; rows whose cells are all empty or whitespace are skipped; ragged rows
  are yielded as they are (the pipeline reports them). `Provenance.row` is the physical line
  on which the record starts, so a quoted cell spanning lines does not shift later numbers.
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
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final, TextIO

from adapters.base import Source
from hub.errors import ConfigError, UnreadableFileError
from hub.records import Provenance, RawRow

DELIMITERS: Final = (";", ",", "\t", "|")
DEFAULT_MAX_CELL_BYTES: Final = 1_000_000

_BLOCK: Final = 1 << 20  # encoding pre-pass reads this much at a time
_SNIFF_CHARS: Final = 64 * 1024  # text sampled for the delimiter
_SNIFF_RECORDS: Final = 50  # non-blank records compared per delimiter
_HEAD: Final = 8 * 1024  # bytes checked for binary content
_LINE_FACTOR: Final = 8  # a physical line may hold this many maximal cells

_XLSX_ADVICE: Final = "Unggah berkas .xlsx sebagai Excel atau simpan ulang sebagai CSV."
_XLS_ADVICE: Final = "Unggah berkas .xls sebagai Excel atau simpan ulang sebagai CSV."
_CSV_ADVICE: Final = "Unggah berkas CSV yang benar."
#: Magic bytes of formats that operators upload by mistake under a .csv name.
_BINARY_MAGIC: Final = (
    (b"PK\x03\x04", "ZIP/Excel", _XLSX_ADVICE),
    (b"PK\x05\x06", "ZIP/Excel", _XLSX_ADVICE),
    (bytes.fromhex("d0cf11e0a1b11ae1"), "Excel lama/Office", _XLS_ADVICE),
    (b"\x89PNG\r\n\x1a\n", "gambar PNG", _CSV_ADVICE),
    (b"\xff\xd8\xff", "gambar JPEG", _CSV_ADVICE),
    (b"GIF8", "gambar GIF", _CSV_ADVICE),
    (b"%PDF", "PDF", _CSV_ADVICE),
    (b"Rar!\x1a\x07", "arsip RAR", _CSV_ADVICE),
    (b"7z\xbc\xaf\x27\x1c", "arsip 7-Zip", _CSV_ADVICE),
    (b"\x1f\x8b", "arsip GZIP", _CSV_ADVICE),
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

    Config keys: `path` (required), `encoding` (any Python codec name; detected when absent),
    `delimiter` (one character; detected when absent), `max_cell_bytes` (default 1,000,000).
    """

    name: ClassVar[str] = "csv"
    config_schema: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "CSV file to read"},
            "encoding": {
                "type": "string",
                "minLength": 1,
                "description": "Python codec name; detected (UTF-8/BOM, UTF-16 BOM, cp1252) "
                "when absent",
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
            reader = csv.reader(_bounded_lines(file, line_limit), delimiter=delimiter)
            try:
                for cells in reader:
                    start, last_line = last_line + 1, reader.line_num
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
    for magic, kind, advice in _BINARY_MAGIC:
        if head.startswith(magic):
            raise UnreadableFileError(f"Berkas ini bukan CSV (terdeteksi format {kind}). {advice}")
    if b"\x00" in head:
        raise UnreadableFileError(f"Berkas ini bukan CSV (berisi data biner). {_CSV_ADVICE}")


def detect_encoding(path: Path) -> str:
    """Return "utf-8-sig", "utf-16", "utf-8" or "cp1252", reading `path` in 1 MB blocks."""
    with path.open("rb") as file:
        head = file.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        file.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := file.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


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


def _bounded_lines(file: TextIO, limit: int) -> Iterable[str]:
    """The file's physical lines; raise `_LineTooLongError` past `limit` characters."""
    while line := file.readline(limit):
        if len(line) == limit and not line.endswith(("\n", "\r")):
            raise _LineTooLongError
        yield line


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
