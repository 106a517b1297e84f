"""Read the sheets of a workbook (.xlsx, .xlsm, .xlsb, .xls, .ods) with python-calamine.

`ExcelSource` yields every non-blank row of every visible worksheet, or of the one sheet named
in its config, with cells keeping the type Excel stored: `str`, `float`/`int` (a NIK typed as
a number stays a number, so the pipeline can tell it may have lost digits), `bool`,
`datetime.date`, `datetime.datetime`, `datetime.time`, `datetime.timedelta`; an empty cell is
`None`, and so is an error cell such as `#N/A` (calamine reports it as empty). Positions are
what the operator sees in Excel:

- `Provenance.row` is the Excel row number (1-based) and `Provenance.part` the sheet name,
  also when the used range starts below row 1;
- `cells[i]` is column i of the sheet (A is 0): when the data start in column C, every row
  begins with two `None`. Rows span up to the last used column of their sheet.
- A merged range (xlsx and xls; calamine reports none for .ods) shows one value across all
  its cells, so each of its cells gets the range's top-left value, as a human reads the sheet.
  Fill happens before the blank-row test.

The format is taken from the file's first bytes, never from its name. Before calamine opens
anything the source rejects, with a one-line Indonesian message (`UnreadableFileError`, or
`EncryptedFileError` for a password):

- a missing or empty file, a renamed image, PDF or archive, a text file (CSV, HTML or XML
  exported under an Excel name);
- a ZIP whose central directory declares more than `max_uncompressed_bytes` in total, or a
  member above 10 MB that expands more than `max_compression_ratio` times (a zip bomb); the
  directory is read without decompressing anything, so sizes a forged archive lies about are
  not caught here (calamine refuses a member longer than it declares);
- an .xlsx worksheet whose used cells span a grid larger than its size can justify (two cells
  at A1 and XFD1048576 would make calamine allocate 512 GiB and abort the process:
  `adapters.excel.extent`);
- an OLE2 (CFB) container holding an `EncryptedPackage` stream: an OOXML workbook saved with
  a password. Other OLE2 files holding a `Workbook`/`Book` stream are legacy .xls and go to
  calamine, whose errors (`CalamineError` and subclasses) also become `UnreadableFileError`.

A workbook with no non-blank row in the sheets read raises `UnreadableFileError` once the
sheets are exhausted. Files are always read whole: `bookmark` is ignored. Calamine parses one
whole sheet at a time, so memory grows with the largest sheet (about 400 MB for 200,000 rows
of 22 columns); rows are then handed out one by one.
"""

from __future__ import annotations

import itertools
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeAlias, cast

import python_calamine as calamine

from adapters.base import Source
from adapters.excel.extent import DEFAULT_MAX_CELLS, check_extent
from hub.errors import EncryptedFileError, UnreadableFileError
from hub.records import CellValue, MergedRange, Provenance, RawRow

DEFAULT_MAX_UNCOMPRESSED_BYTES: Final = 2 * 1024**3
DEFAULT_MAX_COMPRESSION_RATIO: Final = 200
RATIO_CHECK_MIN_BYTES: Final = 10 * 1024 * 1024  # smaller members may compress as they like

Format: TypeAlias = Literal["xlsx", "xlsb", "xls", "ods"]

_HEAD: Final = 8 * 1024
_CFB_MAGIC: Final = bytes.fromhex("d0cf11e0a1b11ae1")
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_CFB_END: Final = 0xFFFFFFFA  # sector numbers from here up are markers, not sectors
_CFB_MAX_DIR_SECTORS: Final = 10_000
_EXTENSIONS: Final[Mapping[Format, tuple[str, ...]]] = {
    "xlsx": (".xlsx", ".xlsm", ".xlam"),
    "xlsb": (".xlsb",),
    "xls": (".xls", ".xla"),
    "ods": (".ods",),
}
_BINARY_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "gambar PNG"),
    (b"\xff\xd8\xff", "gambar JPEG"),
    (b"GIF8", "gambar GIF"),
    (b"%PDF", "PDF"),
    (b"Rar!\x1a\x07", "arsip RAR"),
    (b"7z\xbc\xaf\x27\x1c", "arsip 7-Zip"),
    (b"\x1f\x8b", "arsip GZIP"),
)

ENCRYPTED_MESSAGE: Final = (
    "Berkas Excel dilindungi kata sandi. Buka di Excel, hapus kata sandinya (File > Info > "
    "Lindungi Buku Kerja), simpan, lalu unggah ulang."
)
_UPLOAD_AGAIN: Final = "Unggah berkas .xlsx, .xls, atau .ods yang benar."


class ExcelSource(Source):
    """Yields the non-blank rows of a workbook's sheets, cells typed, Excel row numbers.

    ```python
    source = ExcelSource({"path": "uploads/lahir_juli.xlsx", "sheet": "Juli"})
    for row in source.read():
        print(row.provenance.position, row.cells)  # Juli!R8 (3273010101900001.0, 'Budi', ...)
    ```

    Config keys: `path` (required), `sheet` (name, or 0-based index among all sheets in
    workbook order, hidden ones included, also given as a string of digits when no sheet
    has that name; default: every visible worksheet),
    `max_uncompressed_bytes` (default 2 GiB), `max_compression_ratio` (default 200),
    `max_cells` (default 50,000,000: see `adapters.excel.extent`).
    """

    name: ClassVar[str] = "excel"
    is_report: ClassVar[bool] = True
    config_schema: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "workbook to read"},
            "sheet": {
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {"type": "integer", "minimum": 0},
                ],
                "description": "sheet name or 0-based index; default: every visible sheet",
            },
            "max_uncompressed_bytes": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_UNCOMPRESSED_BYTES,
                "description": "largest total size the ZIP directory may declare",
            },
            "max_compression_ratio": {
                "type": "number",
                "exclusiveMinimum": 1,
                "default": DEFAULT_MAX_COMPRESSION_RATIO,
                "description": "largest expansion of a ZIP member above 10 MB",
            },
            "max_cells": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_CELLS,
                "description": "largest grid (rows x columns) of an .xlsx worksheet",
            },
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.path = Path(config["path"])
        self.sheet: str | int | None = config.get("sheet")
        self.max_uncompressed_bytes = int(
            config.get("max_uncompressed_bytes", DEFAULT_MAX_UNCOMPRESSED_BYTES)
        )
        self.max_compression_ratio = float(
            config.get("max_compression_ratio", DEFAULT_MAX_COMPRESSION_RATIO)
        )
        self.max_cells = int(config.get("max_cells", DEFAULT_MAX_CELLS))
        self._merged: dict[str, list[MergedRange]] = {}

    def read(self, bookmark: str | None = None) -> Iterator[RawRow]:
        """Check the file now (format, zip bomb, password), then stream the sheets' rows."""
        workbook_format = sniff_format(
            self.path, self.max_uncompressed_bytes, self.max_compression_ratio, self.max_cells
        )
        return self._rows(workbook_format)

    def _rows(self, workbook_format: Format) -> Iterator[RawRow]:
        locator = self.path.name
        found = False
        with _open_workbook(self.path, workbook_format) as workbook:
            names = self._sheet_names(workbook)
            for name in names:
                sheet = _load_sheet(workbook, name)
                self._merged[name] = [
                    (top + 1, left, bottom + 1, right)
                    for (top, left), (bottom, right) in sheet.merged_cell_ranges or []
                ]
                for cells, row in _sheet_rows(sheet):
                    found = True
                    yield RawRow(cells, Provenance("excel", locator, row, name))
        if not found:
            if self.sheet is not None:
                raise UnreadableFileError(
                    f"Lembar '{names[0]}' di berkas {locator} kosong. Pilih lembar yang berisi "
                    "data, atau isi lembar itu lalu unggah ulang."
                )
            raise UnreadableFileError(
                f"Semua lembar kerja di berkas {locator} kosong. Periksa isinya, simpan, lalu "
                "unggah ulang."
            )

    def merged_ranges(self) -> Mapping[str, Sequence[MergedRange]]:
        return self._merged

    def _sheet_names(self, workbook: calamine.CalamineWorkbook) -> list[str]:
        """The configured sheet, or every visible worksheet, in workbook order."""
        names = list(workbook.sheet_names)
        if self.sheet is None:
            return [
                meta.name
                for meta in workbook.sheets_metadata
                if meta.visible == calamine.SheetVisibleEnum.Visible
                and meta.typ == calamine.SheetTypeEnum.WorkSheet
            ]
        if self.sheet in names:
            return [str(self.sheet)]
        index = self.sheet if isinstance(self.sheet, int) else None
        if isinstance(self.sheet, str) and self.sheet.isdigit():
            index = int(self.sheet)  # "2" from a command line: no sheet has that name
        if index is not None and not isinstance(index, bool) and 0 <= index < len(names):
            return [names[index]]
        available = ", ".join(f"'{name}'" for name in names)
        raise UnreadableFileError(
            f"Lembar {self.sheet!r} tidak ada di berkas {self.path.name}. Lembar yang ada: "
            f"{available}. Perbaiki pilihan lembar atau unggah berkas yang benar."
        )


def sniff_format(
    path: Path,
    max_uncompressed_bytes: int,
    max_ratio: float,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> Format:
    """Tell the workbook format from the file's content; raise if it is not a safe workbook."""
    if not path.is_file():
        raise UnreadableFileError(
            f"Berkas {path.name} tidak ditemukan. Periksa nama dan lokasinya, lalu unggah ulang."
        )
    with path.open("rb") as file:
        head = file.read(_HEAD)
    if not head:
        raise UnreadableFileError(
            f"Berkas {path.name} kosong (0 byte). Simpan ulang dari Excel, lalu unggah lagi."
        )
    if head.startswith(_ZIP_MAGIC):
        return _check_zip(path, max_uncompressed_bytes, max_ratio, max_cells)
    if head.startswith(_CFB_MAGIC):
        return _check_cfb(path)
    for magic, kind in _BINARY_MAGIC:
        if head.startswith(magic):
            raise UnreadableFileError(
                f"Berkas ini bukan lembar kerja Excel (terdeteksi {kind}). {_UPLOAD_AGAIN}"
            )
    if b"\x00" not in head:
        raise UnreadableFileError(_text_message(head))
    raise UnreadableFileError(f"Format berkas {path.name} tidak dikenali. {_UPLOAD_AGAIN}")


def _check_zip(path: Path, max_total: int, max_ratio: float, max_cells: int) -> Format:
    """Read the central directory only: reject bombs, tell xlsx/xlsb/ods from other ZIPs."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise UnreadableFileError(
            "Berkas Excel ini rusak (arsip ZIP tidak utuh). Buka di Excel, simpan ulang, lalu "
            "unggah lagi."
        ) from exc
    bomb = (
        "Berkas ini ditolak: isinya mengembang jauh melebihi ukurannya (kemungkinan zip bomb). "
        "Buka di Excel, simpan ulang sebagai .xlsx, lalu unggah lagi."
    )
    if sum(member.file_size for member in members) > max_total:
        raise UnreadableFileError(bomb)
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_CHECK_MIN_BYTES and ratio > max_ratio:
            raise UnreadableFileError(bomb)
    names = {member.filename for member in members}
    if "xl/workbook.xml" in names:
        with zipfile.ZipFile(path) as archive:
            check_extent(archive, max_cells)
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "content.xml" in names and "mimetype" in names:
        return "ods"
    kind = "dokumen Word" if "word/document.xml" in names else "arsip ZIP biasa"
    raise UnreadableFileError(
        f"Berkas ini bukan lembar kerja Excel (terdeteksi {kind}). {_UPLOAD_AGAIN}"
    )


def _check_cfb(path: Path) -> Format:
    """An OLE2 container: a password-protected OOXML workbook, a legacy .xls, or neither."""
    names = cfb_stream_names(path)
    if names is None:
        return "xls"  # directory unreadable here: let calamine judge it
    if "EncryptedPackage" in names:
        raise EncryptedFileError(ENCRYPTED_MESSAGE)
    if "Workbook" in names or "Book" in names:
        return "xls"
    kind = "dokumen Word lama (.doc)" if "WordDocument" in names else "dokumen Office lain"
    raise UnreadableFileError(
        f"Berkas ini bukan lembar kerja Excel (terdeteksi {kind}). {_UPLOAD_AGAIN}"
    )


def cfb_stream_names(path: Path) -> set[str] | None:
    """Names of the entries in a CFB (OLE2) directory, or None if it cannot be walked.

    Follows the directory's sector chain through the FAT ([MS-CFB] 2.2-2.6) reading only the
    header, the FAT sectors needed and the directory sectors.
    """
    try:
        with path.open("rb") as file:
            header = file.read(512)
            shift = struct.unpack_from("<H", header, 30)[0]
            if shift not in (9, 12):
                return None
            size = 1 << shift
            per_sector = size // 4
            n_fat, first_dir = struct.unpack_from("<II", header, 44)
            next_difat, n_difat = struct.unpack_from("<II", header, 68)
            fat_sectors = list(struct.unpack_from("<109I", header, 76))
            for _ in range(n_difat):
                if next_difat >= _CFB_END:
                    break
                file.seek((next_difat + 1) * size)
                entries = struct.unpack(f"<{per_sector}I", file.read(size))
                fat_sectors.extend(entries[:-1])
                next_difat = entries[-1]
            fat_sectors = fat_sectors[:n_fat]

            names: set[str] = set()
            sector, seen = first_dir, 0
            while sector < _CFB_END and seen < _CFB_MAX_DIR_SECTORS:
                seen += 1
                file.seek((sector + 1) * size)
                block = file.read(size)
                for offset in range(0, len(block) - 127, 128):
                    name_bytes = struct.unpack_from("<H", block, offset + 64)[0]
                    if block[offset + 66] in (1, 2, 5) and 2 <= name_bytes <= 64:
                        names.add(
                            block[offset : offset + name_bytes - 2].decode("utf-16-le", "replace")
                        )
                fat_sector = fat_sectors[sector // per_sector]
                file.seek((fat_sector + 1) * size + (sector % per_sector) * 4)
                sector = struct.unpack("<I", file.read(4))[0]
    except (struct.error, IndexError):
        return None
    return names


def _text_message(head: bytes) -> str:
    text = head.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(("<!doctype html", "<html")) or "<table" in text:
        return (
            "Berkas ini halaman HTML yang diberi nama Excel. Buka di Excel, simpan sebagai "
            "Buku Kerja Excel (.xlsx), lalu unggah ulang."
        )
    if "urn:schemas-microsoft-com:office:spreadsheet" in text:
        return (
            "Berkas ini XML Spreadsheet 2003. Buka di Excel, simpan sebagai Buku Kerja Excel "
            "(.xlsx), lalu unggah ulang."
        )
    if any(delimiter in text for delimiter in (";", ",", "\t", "|")):
        return "Berkas ini CSV (teks), bukan Excel. Pilih format CSV saat mengunggah."
    return f"Berkas ini teks biasa, bukan lembar kerja Excel. {_UPLOAD_AGAIN}"


def _open_workbook(path: Path, workbook_format: Format) -> calamine.CalamineWorkbook:
    """Open with calamine; from memory when the name's extension would mislead it."""
    try:
        if path.suffix in _EXTENSIONS[workbook_format]:
            return calamine.CalamineWorkbook.from_path(path)
        with path.open("rb") as file:
            return calamine.CalamineWorkbook.from_filelike(file)
    except calamine.PasswordError as exc:
        raise EncryptedFileError(ENCRYPTED_MESSAGE) from exc
    except calamine.CalamineError as exc:
        raise UnreadableFileError(_calamine_message(path, exc)) from exc


def _load_sheet(workbook: calamine.CalamineWorkbook, name: str) -> calamine.CalamineSheet:
    try:
        return workbook.get_sheet_by_name(name)
    except calamine.PasswordError as exc:
        raise EncryptedFileError(ENCRYPTED_MESSAGE) from exc
    except calamine.CalamineError as exc:
        raise UnreadableFileError(f"Lembar '{name}': {_calamine_message(None, exc)}") from exc


def _calamine_message(path: Path | None, exc: Exception) -> str:
    what = f"Berkas {path.name}" if path is not None else "Isinya"
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (
        f"{what} tidak dapat dibaca sebagai Excel ({detail}). Buka di Excel, simpan ulang, lalu "
        "unggah lagi."
    )


def _sheet_rows(sheet: calamine.CalamineSheet) -> Iterator[tuple[tuple[CellValue, ...], int]]:
    """(cells, Excel row number) for each non-blank row; cells indexed by sheet column."""
    start = sheet.start
    if start is None:  # an empty sheet; iter_rows() would panic on it
        return
    merges = _merges_by_row(sheet.merged_cell_ranges or [])
    active: list[tuple[int, int, int, CellValue]] = []  # last row, first col, last col, value
    pad: list[CellValue] = [None] * start[1]
    # iter_rows() yields row 0 onwards (empty rows above the used range), from its first
    # column; each row is a new list, changed in place here.
    rows = cast(Iterator[list[CellValue]], itertools.islice(sheet.iter_rows(), start[0], None))
    for index, cells in enumerate(rows, start[0]):
        if "" in cells:
            cells = [None if value == "" else value for value in cells]
        if pad:
            cells[0:0] = pad
        if merges or active:
            active = _fill_merged(cells, index, merges.pop(index, ()), active)
        for cell in cells:  # a loop, not all(): no generator made for every row
            if cell is not None and (not isinstance(cell, str) or cell.strip()):
                yield tuple(cells), index + 1
                break


def _merges_by_row(
    ranges: Sequence[tuple[tuple[int, int], tuple[int, int]]],
) -> dict[int, list[tuple[int, int, int]]]:
    """Merged ranges keyed by their first row: (last row, first column, last column)."""
    by_row: dict[int, list[tuple[int, int, int]]] = {}
    for (top, left), (bottom, right) in ranges:
        by_row.setdefault(top, []).append((bottom, left, right))
    return by_row


def _fill_merged(
    cells: list[CellValue],
    index: int,
    starting: Sequence[tuple[int, int, int]],
    active: list[tuple[int, int, int, CellValue]],
) -> list[tuple[int, int, int, CellValue]]:
    """Give every cell of a merged range its top-left value; return ranges still open."""
    for bottom, left, right in starting:
        value = cells[left] if left < len(cells) else None
        active.append((bottom, left, right, value))
    for _bottom, left, right, value in active:
        for column in range(left, min(right, len(cells) - 1) + 1):
            cells[column] = value
    return [merge for merge in active if merge[0] > index]
