"""`SQLServerSource`: pages of a legacy table (or query) through pyodbc, from a position.

A kecamatan's SQL Server keeps its own tables (`NIK` as a number, `NO_PROP`/`NO_KAB`/
`NO_KEC`/`NO_KEL` as separate numbers, dates as text). The source reads them as they are and
leaves normalising to the hub, exactly as for an uploaded file; it only joins the separate
region numbers of a mapped region field into one cell (`32-73-1-1001`), which the hub's region
normaliser reads like any other written form.

Strategies (each page is one keyset query, see `adapters.sqlserver.dialect`):

- `cursor`: rows ordered by a monotonically increasing column (`rowversion`, `updated_at`,
  identity) and then by the key; a page starts after the last `(cursor, key)` read, so rows
  sharing a cursor value across a page boundary are neither lost nor read twice. Rows whose
  cursor is NULL are not pulled.
- `change_tracking` (SQL Server only): `CHANGETABLE(CHANGES t, version)` up to the version
  current when the run began. When the stored version is older than
  `CHANGE_TRACKING_MIN_VALID_VERSION` (or there is none yet) the whole table is read again by
  key, and the hub's deduplication drops what it already holds. Deleted rows come back as keys.
- `full`: the whole table by key, every run (small reference tables).

Positions are JSON-able mappings (`Page.position`); the hub stores them (never the source).
The key column must hold integers: it is the row's provenance (`Provenance.row`) and orders
every page. Connection strings carry passwords: they never appear in an error.

```python
source = SQLServerSource({"name": "coblong", "connection": conn_str, "table": "dbo.LAHIR",
                          "key": "ID", "strategy": "cursor", "cursor_column": "RV"})
with source:
    for page in source.pages(position=None):
        ...  # page.header, page.rows, page.keys, page.deleted, page.position
```
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Final

from adapters.base import Source
from adapters.sqlserver.dialect import (
    CURSOR_ALIAS,
    KEY_ALIAS,
    Dialect,
    TSQLDialect,
    VersionQueries,
    detect_dialect,
    dialect_for,
)
from hub.errors import ConfigError, SourceError
from hub.records import CellValue, Provenance, RawRow

DEFAULT_PAGE_ROWS: Final = 5000
KEY_SCAN_ROWS: Final = 50_000
FETCH_ROWS: Final = 1000  # rows per fetchmany
STRATEGIES: Final = ("cursor", "change_tracking", "full")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_ $#@]*$")
_SECRET_VALUE = re.compile(r"(?i)\b(pwd|password|uid|user id|user)\s*=\s*(\{[^}]*\}|[^;]*)")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a pull: rows to ingest, keys deleted upstream, and the position after it.

    `reread` marks pages of a full re-read that replaced Change Tracking (a stale version).
    """

    header: RawRow
    rows: tuple[RawRow, ...]
    keys: tuple[int, ...]
    position: Mapping[str, Any]
    deleted: tuple[int, ...] = ()
    reread: bool = False


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which columns are read and how they become the cells of a row."""

    labels: tuple[str, ...] | None  # None: the columns of the table, as the server names them
    columns: tuple[str, ...]  # source columns selected after the internal ones ("*": all)
    groups: tuple[tuple[int, ...], ...]  # per label: indexes into `columns`


@dataclass
class SQLServerSource(Source):
    """Reads a legacy table or query page by page; see the module docstring.

    `versions` replaces the dialect's Change Tracking version queries (tests);
    `connect` replaces `pyodbc.connect` (tests, benchmarks).
    """

    name: ClassVar[str] = "sqlserver"
    config_schema: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["name", "connection", "key", "strategy"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "source name"},
            "connection": {"type": "string", "minLength": 1, "writeOnly": True},
            "table": {"type": "string", "minLength": 1},
            "query": {"type": "string", "minLength": 1},
            "key": {"type": "string", "minLength": 1},
            "columns": {"type": "object"},
            "strategy": {"enum": list(STRATEGIES)},
            "cursor_column": {"type": "string", "minLength": 1},
            "page_rows": {"type": "integer", "minimum": 1, "default": DEFAULT_PAGE_ROWS},
            "dialect": {"enum": ["auto", "generic", "tsql"], "default": "auto"},
            "login_timeout": {"type": "integer", "minimum": 1, "default": 15},
        },
    }

    config: Mapping[str, Any] = field(repr=False)  # holds the connection string
    versions: VersionQueries | None = None
    connect: Any = None
    key_scan_advised: bool = field(default=False, init=False)
    _connection: Any = field(default=None, init=False, repr=False)
    _dialect: Dialect | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        config = self.config
        self.source_name = str(config["name"])
        self._secret = str(config["connection"])
        self.table: str | None = config.get("table")
        self.query: str | None = config.get("query")
        if (self.table is None) == (self.query is None):
            raise ConfigError(f"source {self.source_name}: give exactly one of table or query")
        self.key = _identifier(config["key"], "key")
        self.strategy = str(config["strategy"])
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"source {self.source_name}: unknown strategy {self.strategy!r}")
        cursor_column = config.get("cursor_column")
        if self.strategy == "cursor" and not cursor_column:
            raise ConfigError(f"source {self.source_name}: strategy cursor needs cursor_column")
        self.cursor_column = _identifier(cursor_column, "cursor_column") if cursor_column else None
        if self.strategy == "change_tracking" and self.table is None:
            raise ConfigError(f"source {self.source_name}: change_tracking needs a table")
        self.page_rows = int(config.get("page_rows", DEFAULT_PAGE_ROWS))
        self.plan = _plan(config.get("columns"))
        self.locator = self.table or "query"
        self.part = f"{self.source_name}:{self.locator}"[:100]

    # ------------------------------------------------------------ connection

    def __enter__(self) -> SQLServerSource:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    @property
    def dialect(self) -> Dialect:
        if self._dialect is None:
            self._cursor()
        assert self._dialect is not None
        return self._dialect

    def _cursor(self) -> Any:
        if self._connection is None:
            connect = self.connect
            if connect is None:
                # Lazily, so `import hub` works without libodbc (pyodbc ships no PEP 561 marker).
                connect = importlib.import_module("pyodbc").connect
            timeout = int(self.config.get("login_timeout", 15))
            try:
                self._connection = connect(self._secret, autocommit=True, timeout=timeout)
            except Exception as exc:
                raise self._error("tidak dapat dihubungi", exc) from None
            wanted = str(self.config.get("dialect", "auto"))
            if wanted == "auto":
                try:
                    dbms = str(self._connection.getinfo(17))  # SQL_DBMS_NAME
                except Exception:
                    dbms = ""
                self._dialect = detect_dialect(dbms)
            else:
                self._dialect = dialect_for(wanted)
        return self._connection.cursor()

    def _error(self, what: str, exc: BaseException) -> SourceError:
        """A driver error as a `SourceError`, with nothing of the connection string in it."""
        detail = " ".join(str(arg) for arg in getattr(exc, "args", ()) or (type(exc).__name__,))
        detail = _SECRET_VALUE.sub(
            lambda m: f"{m.group(1)}=***", detail.replace(self._secret, "***")
        )
        return SourceError(f"Sumber {self.source_name} {what}: {detail[:400]}")

    def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        cursor = self._cursor()
        try:
            cursor.execute(sql, *params)
        except Exception as exc:
            cursor.close()
            raise self._error(f"menolak kueri ({self.locator})", exc) from None
        return cursor

    # ------------------------------------------------------------ SQL pieces

    def _from(self, dialect: Dialect) -> str:
        if self.table is not None:
            return f"{dialect.table(self.table)} AS t"
        return f"({self.query}) AS t"

    def _data_columns(self, dialect: Dialect, alias: str = "t") -> list[str]:
        return [dialect.column(alias, name) for name in self.plan.columns]

    def cursor_page_sql(self, first: bool) -> str:
        d = self.dialect
        assert self.cursor_column is not None
        key, cur = d.column("t", self.key), d.column("t", self.cursor_column)
        select = ", ".join(
            [f"{key} AS {d.quote(KEY_ALIAS)}", f"{cur} AS {d.quote(CURSOR_ALIAS)}"]
            + self._data_columns(d)
        )
        where = f"{cur} IS NOT NULL"
        if not first:
            where += f" AND ({cur} > ? OR ({cur} = ? AND {key} > ?))"
        return d.page_sql(
            select=select,
            source=self._from(d),
            where=where,
            order=f"{cur}, {key}",
            limit=self.page_rows,
        )

    def key_page_sql(self, first: bool, *, data: bool = True, limit: int | None = None) -> str:
        d = self.dialect
        key = d.column("t", self.key)
        select = ", ".join(
            [f"{key} AS {d.quote(KEY_ALIAS)}"] + (self._data_columns(d) if data else [])
        )
        where = f"{key} IS NOT NULL" + ("" if first else f" AND {key} > ?")
        return d.page_sql(
            select=select,
            source=self._from(d),
            where=where,
            order=key,
            limit=limit or self.page_rows,
        )

    # ------------------------------------------------------------ pages

    def pages(self, position: Mapping[str, Any] | None) -> Iterator[Page]:
        """Every page after `position` (None: from the start), in order."""
        self.key_scan_advised = False
        if position is not None and position.get("strategy") != self.strategy:
            position = None  # the strategy changed: start afresh (deduplication drops repeats)
        if self.strategy == "cursor":
            yield from self._cursor_pages(position)
            self.key_scan_advised = True
        elif self.strategy == "full":
            yield from self._full_pages(position)
            self.key_scan_advised = True
        else:
            yield from self._change_pages(position)

    def _cursor_pages(self, position: Mapping[str, Any] | None) -> Iterator[Page]:
        after: tuple[Any, int] | None = None
        if position is not None and "cursor" in position:
            after = (decode_value(position["cursor"]), int(position["key"]))
        while True:
            sql = self.cursor_page_sql(after is None)
            params = () if after is None else (after[0], after[0], after[1])
            rows, header, last = self._fetch(sql, params, offset=2)
            if not rows:
                return
            assert last is not None
            after = (last[1], self._key(last[0]))
            moved = {"strategy": "cursor", "cursor": encode_value(after[0]), "key": after[1]}
            yield self._page(header, rows, moved)
            if len(rows) < self.page_rows:
                return

    def _full_pages(
        self, position: Mapping[str, Any] | None, *, reread_upto: int | None = None
    ) -> Iterator[Page]:
        """Every row by key; positions say where an interrupted read resumes."""
        started_mid = position is not None and position.get("after") is not None
        after: int | None = int(position["after"]) if started_mid and position else None
        read_any = False
        reread = reread_upto is not None
        while True:
            sql = self.key_page_sql(after is None)
            rows, header, last = self._fetch(sql, () if after is None else (after,), offset=1)
            if rows:
                read_any = True
                after = self._key(last[0])
            if len(rows) == self.page_rows:
                yield self._page(header, rows, self._partial(after, reread_upto), reread=reread)
                continue
            if rows or read_any or started_mid:  # a stored partial position must be closed
                yield self._page(header, rows, self._complete(reread_upto), reread=reread)
            if started_mid and not read_any and not reread:
                started_mid, after = False, None  # the interrupted read was complete: read afresh
                continue
            return

    def _complete(self, reread_upto: int | None) -> dict[str, Any]:
        if reread_upto is not None:
            return {"strategy": "change_tracking", "version": reread_upto}
        return {"strategy": "full", "after": None}

    def _partial(self, after: int | None, reread_upto: int | None) -> dict[str, Any]:
        if reread_upto is not None:
            return {"strategy": "change_tracking", "reread": {"upto": reread_upto, "after": after}}
        return {"strategy": "full", "after": after}

    def _change_pages(self, position: Mapping[str, Any] | None) -> Iterator[Page]:
        assert self.table is not None
        dialect = self.dialect
        versions = self.versions
        if versions is None:
            if not isinstance(dialect, TSQLDialect):
                raise SourceError(
                    f"Sumber {self.source_name}: change_tracking hanya untuk SQL Server "
                    f"(server ini memakai dialek {dialect.name}); pakai strategi cursor atau full."
                )
            versions = dialect
        position = position or {}
        reread = position.get("reread")
        if isinstance(reread, Mapping):  # an interrupted full re-read: finish it first
            self.key_scan_advised = True
            yield from self._full_pages(reread, reread_upto=int(reread["upto"]))
            return
        cursor = self._cursor()
        try:
            min_valid = versions.min_valid_version(cursor, self.table)
            current = versions.current_version(cursor)
        except SourceError:
            raise
        except Exception as exc:
            raise self._error("tidak dapat membaca versi Change Tracking", exc) from None
        finally:
            cursor.close()
        if min_valid is None or current is None:
            raise SourceError(
                f"Sumber {self.source_name}: Change Tracking tidak aktif pada tabel "
                f"{self.table}. Aktifkan (ALTER TABLE ... ENABLE CHANGE_TRACKING) atau pakai "
                "strategi cursor."
            )
        last = position.get("version")
        if last is None or int(last) < min_valid:
            self.key_scan_advised = True
            self.reread_reason = (
                "belum ada versi"
                if last is None
                else f"versi {last} < versi sah terkecil {min_valid}"
            )
            yield from self._full_pages(None, reread_upto=current)
            return
        yield from self._changes(
            int(last), int(position.get("upto", current)), position.get("after")
        )

    def _changes(self, last: int, upto: int, after: Sequence[Any] | None) -> Iterator[Page]:
        dialect = self.dialect
        if not isinstance(dialect, TSQLDialect) or self.table is None:
            raise SourceError(f"Sumber {self.source_name}: change_tracking hanya untuk SQL Server.")
        sql = dialect.changes_sql(
            table=self.table, key=self.key, columns=self.plan.columns, limit=self.page_rows
        )
        mark = (int(after[0]), int(after[1])) if after else (last, -(2**63))
        while True:
            params = (last, upto, mark[0], mark[0], mark[1])
            rows, header, tail = self._fetch(sql, params, offset=3)
            if tail is not None:
                mark = (int(tail[1]), self._key(tail[0]))
            short = len(rows) < self.page_rows
            position: dict[str, Any] = (
                {"strategy": "change_tracking", "version": upto}
                if short
                else {
                    "strategy": "change_tracking",
                    "version": last,
                    "upto": upto,
                    "after": list(mark),
                }
            )
            if rows or after:
                yield self._page(header, rows, position, ops=True)
            if short:
                return
            after = list(mark)

    # ------------------------------------------------------------ rows

    def _fetch(
        self, sql: str, params: Sequence[Any], *, offset: int
    ) -> tuple[list[Any], tuple[str, ...], Any]:
        """The rows of one page query (fetchmany), the header labels, and the last row."""
        cursor = self._execute(sql, params)
        try:
            names = tuple(str(d[0]) for d in cursor.description[offset:])
            rows: list[Any] = []
            while chunk := cursor.fetchmany(FETCH_ROWS):
                rows.extend(chunk)
        except Exception as exc:
            raise self._error(f"gagal membaca ({self.locator})", exc) from None
        finally:
            cursor.close()
        self._offset = offset
        return rows, self.plan.labels or names, rows[-1] if rows else None

    def _page(
        self,
        labels: Sequence[str],
        fetched: Sequence[Any],
        position: Mapping[str, Any],
        *,
        ops: bool = False,
        reread: bool = False,
    ) -> Page:
        offset = self._offset
        header = RawRow(tuple(labels), Provenance(self.name, self.locator, 0, self.part))
        keys: list[int] = []
        deleted: list[int] = []
        kept: list[Any] = []
        for fetched_row in fetched:
            key = self._key(fetched_row[0])
            if ops and (fetched_row[2] == "D" or all(v is None for v in fetched_row[offset:])):
                deleted.append(key)
                continue
            keys.append(key)
            kept.append(fetched_row)
        rows = self._rows(kept, keys, offset) if kept else []
        return Page(header, tuple(rows), tuple(keys), dict(position), tuple(deleted), reread)

    def _rows(self, kept: Sequence[Any], keys: Sequence[int], offset: int) -> list[RawRow]:
        """The rows of a page, a column at a time: a column of plain values (the common
        case) is taken as it is, the others converted by `to_cell`."""
        width = len(kept[0]) - offset
        columns = [_column_cells([row[offset + i] for row in kept]) for i in range(width)]
        if self.plan.groups:
            columns = [
                columns[group[0]] if len(group) == 1 else _joined(columns, group)
                for group in self.plan.groups
            ]
        name, locator, part = self.name, self.locator, self.part
        return [
            RawRow(cells, Provenance(name, locator, key, part))
            for key, cells in zip(keys, zip(*columns, strict=True), strict=True)
        ]

    def _key(self, value: Any) -> int:
        cell = to_cell(value)
        if isinstance(cell, int) and not isinstance(cell, bool):
            return cell
        if isinstance(cell, str) and cell.strip().lstrip("-").isdigit():
            return int(cell)
        raise SourceError(
            f"Sumber {self.source_name}: kolom kunci {self.key} harus berisi bilangan bulat "
            "(identity, nomor register)."
        )

    def upstream_keys(self) -> Iterator[int]:
        """Every key of the source in ascending order, a large keyset page at a time."""
        after: int | None = None
        while True:
            sql = self.key_page_sql(after is None, data=False, limit=KEY_SCAN_ROWS)
            rows, _, last = self._fetch(sql, () if after is None else (after,), offset=1)
            for row in rows:
                yield self._key(row[0])
            if len(rows) < KEY_SCAN_ROWS or last is None:
                return
            after = self._key(last[0])

    def read(self, bookmark: str | None = None) -> Iterator[RawRow]:
        """The header, then every row after `bookmark` (a JSON position), for one batch."""
        import json

        position = json.loads(bookmark) if bookmark else None
        first = True
        for page in self.pages(position):
            if first:
                yield page.header
                first = False
            yield from page.rows


# ---------------------------------------------------------------- values


def to_cell(value: Any) -> CellValue:
    """A driver value as a cell: exact numbers stay numbers (a NUMERIC(16,0) NIK becomes an
    `int`, as in a spreadsheet); binary becomes hex text, GUIDs text."""
    if value is None or isinstance(value, str | int | float | dt.date | dt.time | dt.timedelta):
        return value  # bool is an int; datetime is a date
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


_PLAIN: Final = frozenset(
    {str, int, float, bool, type(None), dt.date, dt.datetime, dt.time, dt.timedelta}
)


def _column_cells(values: list[Any]) -> list[CellValue]:
    """One column of a page as cells; plain values are not touched."""
    if set(map(type, values)) <= _PLAIN:
        return values
    return list(map(to_cell, values))


def _joined(columns: Sequence[Sequence[CellValue]], group: Sequence[int]) -> list[CellValue]:
    return [_join_parts(parts) for parts in zip(*(columns[i] for i in group), strict=True)]


def _join_parts(cells: Sequence[CellValue]) -> CellValue:
    """One cell from several columns (region parts `32, 73, 1, 1001` -> `32-73-1-1001`)."""
    if any(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
        return None
    parts = [
        str(int(c)) if isinstance(c, float) and c.is_integer() else str(c).strip() for c in cells
    ]
    return "-".join(parts)


def encode_value(value: Any) -> dict[str, Any]:
    """A cursor value as JSON, typed so it binds back as the same SQL type."""
    if isinstance(value, bool):
        return {"t": "int", "v": int(value)}
    if isinstance(value, int):
        return {"t": "int", "v": value}
    if isinstance(value, Decimal):
        return {"t": "decimal", "v": str(value)}
    if isinstance(value, float):
        return {"t": "float", "v": value}
    if isinstance(value, dt.datetime):
        return {"t": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"t": "date", "v": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"t": "bytes", "v": bytes(value).hex()}
    if isinstance(value, str):
        return {"t": "str", "v": value}
    raise SourceError(f"kolom cursor bertipe {type(value).__name__} tidak didukung")


def decode_value(encoded: Mapping[str, Any]) -> Any:
    kind, value = encoded["t"], encoded["v"]
    if kind == "int":
        return int(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "float":
        return float(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "bytes":
        return bytes.fromhex(value)
    return str(value)


def _identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ConfigError(f"{what}: {value!r} is not a column name")
    return value


def _plan(columns: Mapping[str, Any] | None) -> _Plan:
    """Labels (canonical field names) and the source columns behind each."""
    if not columns:
        return _Plan(None, ("*",), ())
    selected: list[str] = []
    groups: list[tuple[int, ...]] = []
    for field_name, source in columns.items():
        names = [source] if isinstance(source, str) else list(source)
        if not names:
            raise ConfigError(f"columns.{field_name}: name at least one column")
        group = []
        for name in names:
            _identifier(name, f"columns.{field_name}")
            if name not in selected:
                selected.append(name)
            group.append(selected.index(name))
        groups.append(tuple(group))
    return _Plan(tuple(columns), tuple(selected), tuple(groups))
