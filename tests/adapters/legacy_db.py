"""A kecamatan's legacy birth register, created through ODBC for the sync tests.

SIAK-like upper-case columns, NIK and No. KK as NUMERIC(16,0), the region in four numeric
columns, dates as text (`17/08/2025`), and `RV`, a counter that rises with every insert and
update like a SQL Server `rowversion`. On SQLite (the `SQLite3` ODBC driver, a file per test)
and on PostgreSQL (`PostgreSQL Unicode`, a schema of its own per test in database `test`).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import PG_URL, _postgres_problem, _unavailable

COLUMNS = (
    "NO_REG", "NAMA_LGKP", "JENIS_KLMIN", "TMPT_LHR", "TGL_LHR", "ANAK_KE", "NIK_IBU",
    "NAMA_LGKP_IBU", "NO_KK", "NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL", "NIK_PELAPOR",
    "NAMA_PELAPOR", "TGL_LAPOR", "RV",
)  # fmt: skip

#: canonical field -> legacy column(s), as a routes.yaml source maps them.
MAPPING: dict[str, Any] = {
    "nama_bayi": "NAMA_LGKP",
    "jenis_kelamin": "JENIS_KLMIN",
    "tempat_kelahiran": "TMPT_LHR",
    "tanggal_lahir": "TGL_LHR",
    "kelahiran_ke": "ANAK_KE",
    "nik_ibu": "NIK_IBU",
    "nama_ibu": "NAMA_LGKP_IBU",
    "no_kk": "NO_KK",
    "kode_wilayah": ["NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL"],
    "nik_pelapor": "NIK_PELAPOR",
    "nama_pelapor": "NAMA_PELAPOR",
    "tanggal_lapor": "TGL_LAPOR",
}


def pyodbc() -> Any:
    return importlib.import_module("pyodbc")


def birth(reg: int, *, child: str | None = None, day: int = 17, anak_ke: int = 1) -> dict[str, Any]:
    """A valid legacy row; `reg` also picks the mother (one mother per register number)."""
    return {
        "NO_REG": reg,
        "NAMA_LGKP": child or f"ANAK NOMOR {reg}",
        "JENIS_KLMIN": 1 + reg % 2,
        "TMPT_LHR": "BANDUNG",
        "TGL_LHR": f"{day:02d}/08/2025",
        "ANAK_KE": anak_ke,
        "NIK_IBU": int(f"327301450790{reg % 10000:04d}"),
        "NAMA_LGKP_IBU": "SITI AMINAH",
        "NO_KK": 3273011203150004,
        "NO_PROP": 32,
        "NO_KAB": 73,
        "NO_KEC": 1,
        "NO_KEL": 1001,
        "NIK_PELAPOR": 3273010101880002,
        "NAMA_PELAPOR": "BUDI SANTOSO",
        "TGL_LAPOR": "20/08/2025",
    }


@dataclass
class LegacyDB:
    """The register and a connection to change it, as the kecamatan's application would."""

    kind: str
    connection: str = field(repr=False)
    table: str
    _conn: Any = None
    _rv: int = 0
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._conn = pyodbc().connect(self.connection, autocommit=True)

    def quote(self, name: str) -> str:
        return ".".join(f'"{part}"' for part in name.split("."))

    def execute(self, sql: str, *params: Any) -> Any:
        return self._conn.cursor().execute(sql, *params)

    def create(self, table: str | None = None) -> None:
        nik = "NUMERIC(16,0)"
        self.execute(
            f"CREATE TABLE {self.quote(table or self.table)} ("
            '"NO_REG" INTEGER PRIMARY KEY, "NAMA_LGKP" VARCHAR(100), "JENIS_KLMIN" INTEGER, '
            '"TMPT_LHR" VARCHAR(60), "TGL_LHR" VARCHAR(20), "ANAK_KE" INTEGER, '
            f'"NIK_IBU" {nik}, "NAMA_LGKP_IBU" VARCHAR(100), "NO_KK" {nik}, '
            '"NO_PROP" INTEGER, "NO_KAB" INTEGER, "NO_KEC" INTEGER, "NO_KEL" INTEGER, '
            f'"NIK_PELAPOR" {nik}, "NAMA_PELAPOR" VARCHAR(100), "TGL_LAPOR" VARCHAR(20), '
            '"RV" BIGINT)'
        )

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def insert(self, rows: Sequence[dict[str, Any]], *, rv: int | None = None) -> None:
        """Insert rows; each gets the next RV, or all of them `rv` (a tie)."""
        cursor = self._conn.cursor()
        marks = ", ".join("?" * len(COLUMNS))
        names = ", ".join(f'"{c}"' for c in COLUMNS)
        values = []
        for row in rows:
            values.append(
                [*(row[c] for c in COLUMNS[:-1]), rv if rv is not None else self.next_rv()]
            )
        cursor.fast_executemany = self.kind == "postgresql"
        cursor.executemany(
            f"INSERT INTO {self.quote(self.table)} ({names}) VALUES ({marks})", values
        )

    def update(self, reg: int, **changes: Any) -> None:
        sets = ", ".join(f'"{k}" = ?' for k in changes)
        self.execute(
            f'UPDATE {self.quote(self.table)} SET {sets}, "RV" = ? WHERE "NO_REG" = ?',
            *changes.values(),
            self.next_rv(),
            reg,
        )

    def delete(self, reg: int) -> None:
        self.execute(f'DELETE FROM {self.quote(self.table)} WHERE "NO_REG" = ?', reg)

    def close(self) -> None:
        self._conn.close()


def _libpq_parts() -> tuple[str, int, str, str]:
    import sqlalchemy as sa

    url = sa.make_url(PG_URL)
    return url.host or "127.0.0.1", url.port or 5432, url.database or "test", url.username or ""


def open_legacy(kind: str, tmp_path: Path) -> Iterator[LegacyDB]:
    """A fresh legacy register on `kind` (sqlite or postgresql), dropped afterwards."""
    try:
        drivers = set(pyodbc().drivers())
    except ImportError as exc:  # no libodbc
        _unavailable(f"pyodbc cannot load: {exc}")
        raise
    if kind == "sqlite":
        if "SQLite3" not in drivers:
            _unavailable("the SQLite3 ODBC driver is not installed (tools/debian-packages)")
        path = tmp_path / "legacy.db"
        db = LegacyDB(kind, f"DRIVER={{SQLite3}};Database={path}", "LAHIR")
        db.create()
        yield db
        db.close()
        return
    if "PostgreSQL Unicode" not in drivers:
        _unavailable("the PostgreSQL ODBC driver is not installed (tools/debian-packages)")
    problem = _postgres_problem()
    if problem:
        _unavailable(problem)
    host, port, database, user = _libpq_parts()
    schema = f"legacy_{uuid.uuid4().hex[:12]}"
    connection = (
        f"DRIVER={{PostgreSQL Unicode}};Server={host};Port={port};Database={database};"
        f"UID={user};PWD=sandbox-password-123;UseDeclareFetch=1;Fetch=2000"
    )
    db = LegacyDB(kind, connection, f"{schema}.LAHIR")
    db.execute(f'CREATE SCHEMA "{schema}"')
    db.create()
    try:
        yield db
    finally:
        db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        db.close()
