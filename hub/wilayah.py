"""The Kemendagri region master (kode wilayah): import, search, and an in-memory index.

Codes are dotted: `PP` provinsi, `PP.KK` kabupaten/kota, `PP.KK.CC` kecamatan,
`PP.KK.CC.DDDD` desa/kelurahan. The store keeps every code it was ever given: codes that a
later regulation retired stay, because older NIKs and records still carry them.

```python
with engine.begin() as conn:
    import_csv(conn, "wilayah.csv")      # {'provinsi': 38, ..., 'inserted': 91599, ...}
    index = WilayahIndex.load(conn)
index.level_of("32.73.01.1001")            # 4
index.has_kecamatan("327301")              # True: a NIK starting 327301 is from Sukasari
WilayahIndex.normalise(" 32 73 01 1001 ")  # '32.73.01.1001'
```
"""

from __future__ import annotations

import csv
import re
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import accumulate
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from hub.errors import ConfigValidationError
from hub.store import bulk_insert
from hub.store.tables import wilayah

LEVELS: Final = {"provinsi": 1, "kabkota": 2, "kecamatan": 3, "desa": 4}
LEVEL_NAMES: Final = {number: name for name, number in LEVELS.items()}
COLUMNS: Final = ("kode", "nama", "level", "induk")
DEMO_CSV: Final = "data/wilayah_demo.csv"  # inside the `hub` package
MAX_REPORTED_ERRORS: Final = 200

_WIDTHS: Final = (2, 2, 2, 4)
_SHAPE: Final = re.compile(r"\d{2}(?:\.\d{2}(?:\.\d{2}(?:\.\d{4})?)?)?", re.ASCII)
_LEVEL_BY_LENGTH: Final = {2: 1, 5: 2, 8: 3, 13: 4}  # dotted text length -> level
_UNDOTTED_WIDTHS: Final = {2: 1, 4: 2, 6: 3, 10: 4}
_SEPARATORS: Final = re.compile(r"\s*[.\-/]\s*|\s+")  # one separator, spaces around it
_DIGITS: Final = re.compile(r"\d+", re.ASCII)
_INVISIBLE: Final = str.maketrans({"\u200b": None, "\u200c": None, "\u200d": None, "\ufeff": None})
_NAME_MAX: Final = 200  # wilayah.nama is String(200)
_INSERT_COLUMNS: Final = ("kode", "nama", "level", "induk", "nama_cari")
_DIGIT2: Final = "[0-9][0-9]"
#: `_SHAPE` as the database checks it, by dialect (desa first: most rows are one).
_SHAPE_SQL: Final = {
    "sqlite": " OR ".join(
        f"kode GLOB '{pattern}'"
        for pattern in (
            f"{_DIGIT2}.{_DIGIT2}.{_DIGIT2}.{_DIGIT2}{_DIGIT2}",
            f"{_DIGIT2}.{_DIGIT2}.{_DIGIT2}",
            f"{_DIGIT2}.{_DIGIT2}",
            _DIGIT2,
        )
    ),
    "postgresql": "kode ~ '^[0-9]{2}([.][0-9]{2}([.][0-9]{2}([.][0-9]{4})?)?)?$'",
}
#: The index's rows: the integer key of each well-formed code and its name, by key.
_INDEX_SQL: Final = (
    "SELECT CAST(REPLACE(kode, '.', '') AS BIGINT) AS k, nama FROM wilayah WHERE {shape} ORDER BY k"
)


@dataclass(frozen=True, slots=True)
class Wilayah:
    """One region of the master list."""

    kode: str
    nama: str
    level: int  # 1 provinsi, 2 kabupaten/kota, 3 kecamatan, 4 desa/kelurahan
    induk: str | None


def code_level(kode: str) -> int | None:
    """The level a dotted code's shape implies (1..4), or None when it is not a dotted code."""
    level = _LEVEL_BY_LENGTH.get(len(kode))
    return level if level is not None and _SHAPE.fullmatch(kode) else None


def search_key(text: str) -> str:
    """The form names are searched in (`wilayah.nama_cari`): spaces collapsed, case folded."""
    return " ".join(text.split()).casefold()


# ------------------------------------------------------------------ import


def import_csv(conn: sa.Connection, path: str | Path) -> dict[str, int]:
    """Load a Kemendagri region CSV (`kode,nama,level,induk`) into `wilayah`, all or nothing.

    Every row is checked first: code shape, known level, level matching the code, name
    present, parent present and equal to the code's prefix (and known, in the file or the
    table), no repeated code. Any problem raises `ConfigValidationError` listing each one
    with its line number, and nothing is written. Otherwise new codes are inserted and
    changed names updated; a second import of the same file writes nothing.

    Returns the rows per level name, plus `inserted`, `updated` and `unchanged`.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        return _import(conn, f, str(path))


def ensure_demo_loaded(conn: sa.Connection) -> bool:
    """Load the bundled demo subset (Kota Bandung) when `wilayah` is empty; True if it did."""
    if conn.execute(sa.select(wilayah.c.kode).limit(1)).first() is not None:
        return False
    with resources.files("hub").joinpath(DEMO_CSV).open("r", encoding="utf-8-sig") as f:
        _import(conn, f, DEMO_CSV)
    return True


def read_csv(lines: Iterable[str], source: str = "wilayah.csv") -> list[Wilayah]:
    """Parse and check a region CSV without a store (the parent check is within the file)."""
    return _parse(lines, source, known=frozenset())


def _import(conn: sa.Connection, lines: Iterable[str], source: str) -> dict[str, int]:
    held = {
        row.kode: (row.nama, row.induk)
        for row in conn.execute(sa.select(wilayah.c.kode, wilayah.c.nama, wilayah.c.induk))
    }
    regions = _parse(lines, source, known=held.keys())
    counts = dict.fromkeys(LEVELS, 0)
    inserts: list[tuple[str, str, int, str | None, str]] = []
    updates: list[dict[str, str | None]] = []
    for region in regions:
        counts[LEVEL_NAMES[region.level]] += 1
        before = held.get(region.kode)
        if before is None:
            row = (region.kode, region.nama, region.level, region.induk, search_key(region.nama))
            inserts.append(row)
        elif before != (region.nama, region.induk):
            updates.append(
                {
                    "k": region.kode,
                    "nama": region.nama,
                    "induk": region.induk,
                    "nama_cari": search_key(region.nama),
                }
            )
    bulk_insert(conn, wilayah, _INSERT_COLUMNS, inserts)
    if updates:
        conn.execute(
            wilayah.update().where(wilayah.c.kode == sa.bindparam("k")),
            updates,
        )
    counts["inserted"] = len(inserts)
    counts["updated"] = len(updates)
    counts["unchanged"] = len(regions) - len(inserts) - len(updates)
    return counts


def _parse(lines: Iterable[str], source: str, known: Iterable[str]) -> list[Wilayah]:
    reader = csv.reader(lines)
    header = [cell.strip().lower() for cell in next(reader, [])]
    if header[:4] != list(COLUMNS) or any(header[4:]):
        raise ConfigValidationError(
            f"{source} is not a region list",
            [f"line 1: header must be {','.join(COLUMNS)}, found {','.join(header) or 'nothing'}"],
        )
    errors: list[str] = []
    regions: list[Wilayah] = []
    lines_of: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != 4:
            errors.append(f"line {line}: expected 4 columns, found {len(cells)}")
            continue
        kode, nama, level_name, induk = (cell.strip() for cell in cells)
        region = _check_row(line, kode, " ".join(nama.split()), level_name, induk, errors)
        if region is None:
            continue
        if region.kode in lines_of:
            errors.append(f"line {line}: kode {kode} repeats line {lines_of[region.kode]}")
            continue
        lines_of[region.kode] = line
        regions.append(region)
    known_codes = set(known)
    for region in regions:
        if region.induk and region.induk not in lines_of and region.induk not in known_codes:
            errors.append(
                f"line {lines_of[region.kode]}: induk {region.induk} of {region.kode} "
                "is neither in the file nor in the store"
            )
    if errors:
        errors.sort(key=lambda e: int(e.split(":", 1)[0].removeprefix("line ")))
        shown = errors[:MAX_REPORTED_ERRORS]
        if len(errors) > len(shown):
            shown.append(f"... and {len(errors) - len(shown)} more")
        raise ConfigValidationError(
            f"{source}: {len(errors)} invalid rows, nothing imported", shown
        )
    return regions


def _check_row(
    line: int, kode: str, nama: str, level_name: str, induk: str, errors: list[str]
) -> Wilayah | None:
    """One row's own checks; appends to `errors` and returns None when the row is bad."""
    found = len(errors)
    shape_level = code_level(kode)
    level = LEVELS.get(level_name.lower())
    if shape_level is None:
        errors.append(
            f"line {line}: kode {kode!r} is not a region code "
            "(PP, PP.KK, PP.KK.CC or PP.KK.CC.DDDD)"
        )
    if level is None:
        errors.append(f"line {line}: level {level_name!r} is not one of {', '.join(LEVELS)}")
    elif shape_level is not None and level != shape_level:
        errors.append(
            f"line {line}: kode {kode} has the shape of a {LEVEL_NAMES[shape_level]}, "
            f"not a {level_name}"
        )
    if not nama:
        errors.append(f"line {line}: nama is empty")
    elif len(nama) > _NAME_MAX:
        errors.append(f"line {line}: nama is longer than {_NAME_MAX} characters")
    if shape_level is not None:
        prefix = kode.rpartition(".")[0] if shape_level > 1 else ""
        if shape_level == 1 and induk:
            errors.append(f"line {line}: a provinsi has no induk, found {induk!r}")
        elif shape_level > 1 and not induk:
            errors.append(f"line {line}: induk is missing (expected {prefix})")
        elif induk != prefix:
            errors.append(f"line {line}: induk {induk!r} does not match the code prefix {prefix}")
    if len(errors) > found or level is None:
        return None
    return Wilayah(kode, nama, level, induk or None)


# ------------------------------------------------------------------ search


def find(
    conn: sa.Connection, text: str, induk: str | None = None, limit: int = 20
) -> list[Wilayah]:
    """Regions whose name contains `text` (case-insensitive), under `induk` if given, by code.

    `induk` may be written in any form `WilayahIndex.normalise` accepts; one that is not a
    region code matches nothing.
    """
    query = sa.select(wilayah.c.kode, wilayah.c.nama, wilayah.c.level, wilayah.c.induk)
    words = search_key(text)
    if words:
        query = query.where(wilayah.c.nama_cari.contains(words, autoescape=True))
    if induk is not None:
        parent = WilayahIndex.normalise(induk)
        if parent is None:
            return []
        query = query.where(wilayah.c.kode.startswith(parent + ".", autoescape=True))
    rows = conn.execute(query.order_by(wilayah.c.kode).limit(limit))
    return [Wilayah(row.kode, row.nama, row.level, row.induk) for row in rows]


# ------------------------------------------------------------------ in-memory index


class WilayahIndex:
    """Every code and name in compact arrays, for checks in the validation hot loop.

    Codes are held as the integers of their digits (`32.73.01.1001` -> 3273011001; the four
    levels have 2, 4, 6 and 10 digits, so they never collide), sorted, and found by bisection;
    names are one UTF-8 blob with offsets. The full master list takes about 3 MB.

    ```python
    index = WilayahIndex.load(conn)
    index.level_of("32.73.01.1001"), index.name_of("32.73")   # (4, 'Kota Bandung')
    ```
    """

    __slots__ = ("_kecamatan", "_keys", "_names", "_offsets")

    def __init__(self, regions: Iterable[tuple[str, str]]) -> None:
        """Build from `(kode, nama)` pairs; codes that are not dotted codes are skipped."""
        shape = _SHAPE.fullmatch
        self._fill([(int(kode.replace(".", "")), nama) for kode, nama in regions if shape(kode)])

    def _fill(self, entries: list[tuple[int, str]]) -> None:
        """Set the arrays from `(key, nama)` pairs, sorting them in place (in about linear
        time when they come sorted by key; equal keys are ordered by name, as ever)."""
        entries.sort()
        self._keys = array("q", [key for key, _ in entries])
        names = list(map(str.encode, [nama for _, nama in entries]))
        self._names = b"".join(names)
        self._offsets = array("L", [0, *accumulate(map(len, names))])
        kecamatan = self._keys[
            bisect_left(self._keys, 100_000) : bisect_left(self._keys, 1_000_000)
        ]
        self._kecamatan = frozenset(map(str, kecamatan))

    @classmethod
    def load(cls, conn: sa.Connection) -> WilayahIndex:
        """The index of the `wilayah` table; it runs at every start, so the database checks
        the codes' shape, makes their keys and sorts them, and the rows come through the
        driver's cursor (SQLAlchemy's row objects would double the time of the full list)."""
        shape = _SHAPE_SQL.get(conn.dialect.name)
        if shape is None:  # another database: read the codes, check them here
            return cls(conn.exec_driver_sql("SELECT kode, nama FROM wilayah").all())
        cursor = conn.connection.cursor()
        try:
            cursor.execute(_INDEX_SQL.format(shape=shape))
            entries: list[tuple[int, str]] = list(cursor.fetchall())
        finally:
            cursor.close()
        index = cls(())
        index._fill(entries)
        return index

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, kode: object) -> bool:
        return isinstance(kode, str) and self._position(kode) is not None

    def __iter__(self) -> Iterator[str]:
        for key in self._keys:
            yield _dotted(str(key))

    def _position(self, kode: str) -> int | None:
        if code_level(kode) is None:
            return None
        key = int(kode.replace(".", ""))
        i = bisect_left(self._keys, key)
        return i if i < len(self._keys) and self._keys[i] == key else None

    def level_of(self, kode: str) -> int | None:
        """1..4 for a known dotted code, None for an unknown or malformed one."""
        return None if self._position(kode) is None else _LEVEL_BY_LENGTH[len(kode)]

    def name_of(self, kode: str) -> str | None:
        i = self._position(kode)
        if i is None:
            return None
        return self._names[self._offsets[i] : self._offsets[i + 1]].decode()

    def has_kecamatan(self, prefix: str) -> bool:
        """True when the 6 digits `PPKKCC` (a NIK's first six) are a known kecamatan."""
        return prefix in self._kecamatan

    def nbytes(self) -> int:
        """Approximate memory held by the index, for reports."""
        return (
            sys.getsizeof(self._keys)
            + sys.getsizeof(self._offsets)
            + sys.getsizeof(self._names)
            + sys.getsizeof(self._kecamatan)
            + sum(sys.getsizeof(k) for k in self._kecamatan)
        )

    @staticmethod
    def normalise(value: str | int | float | Sequence[str | int]) -> str | None:
        """Any written form of a code -> the dotted form, or None if it cannot be one.

        Accepts `3273011001`, `32.73.01.1001`, ` 32 73 01 1001 `, `32-73-1-1001`, the legacy
        parts `(32, 73, 1, 1001)` (NO_PROP, NO_KAB, NO_KEC, NO_KEL), prefixes of them
        (`3273` -> `32.73`) and numbers from spreadsheet cells. Existence is not checked.
        """
        if isinstance(value, bool):
            return None
        if isinstance(value, float):
            if not value.is_integer() or value < 0:
                return None
            value = int(value)
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            return _from_parts([str(part).strip() for part in value])
        if _SHAPE.fullmatch(text):  # already dotted: the common case
            return text
        text = text.translate(_INVISIBLE).replace("\u00a0", " ").strip().lstrip("'").strip()
        if _DIGITS.fullmatch(text):
            if len(text) not in _UNDOTTED_WIDTHS:
                return None
            return _dotted(text)
        return _from_parts(_SEPARATORS.split(text))


def _dotted(digits: str) -> str:
    parts, start = [], 0
    for width in _WIDTHS:
        if start >= len(digits):
            break
        parts.append(digits[start : start + width])
        start += width
    return ".".join(parts)


def _from_parts(parts: Sequence[str]) -> str | None:
    """Pad legacy parts (`32`, `73`, `1`, `1001`) to their widths and join them."""
    if not 1 <= len(parts) <= 4:
        return None
    if len(parts[0]) != 2:
        return None  # a provinsi is always written with both digits
    padded = []
    for part, width in zip(parts, _WIDTHS, strict=False):
        if not _DIGITS.fullmatch(part) or len(part) > width:
            return None
        padded.append(part.zfill(width))
    return ".".join(padded)


def demo_csv_text() -> str:
    """The bundled demo subset as text (for docs and tests)."""
    return resources.files("hub").joinpath(DEMO_CSV).read_text(encoding="utf-8")
