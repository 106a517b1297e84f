"""The SQL a source sends, per dialect. Every T-SQL-only piece lives here and only here.

- `TSQLDialect` (SQL Server): `[bracket]` identifiers, `SELECT TOP (n)`, and the Change
  Tracking queries: `CHANGETABLE(CHANGES ...)`, `CHANGE_TRACKING_CURRENT_VERSION()` and
  `CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(...))`.
- `GenericDialect` (any ODBC database that knows `LIMIT`: PostgreSQL, SQLite, MySQL):
  `"double-quoted"` identifiers, `LIMIT n`. No Change Tracking.

Every query a source runs is a keyset page: `WHERE (position) > (last row read) ORDER BY
position LIMIT n`, so memory stays bounded whatever the driver buffers, and each query is short
(no long-held locks on the legacy server). Values always travel as parameters (`?`); only
identifiers (quoted here) and validated integers are written into the text.

```python
dialect = dialect_for("tsql")
sql = dialect.page_sql(select="t.[NIK]", source="[dbo].[LAHIR] AS t",
                       where="t.[ID] > ?", order="t.[ID]", limit=5000)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final, Protocol

#: Aliases of the columns a source reads for itself, ahead of the data columns.
KEY_ALIAS: Final = "hub_key"
CURSOR_ALIAS: Final = "hub_cursor"
OPERATION_ALIAS: Final = "hub_op"


class Dialect:
    """Identifier quoting and keyset pages; the generic base knows no vendor extensions."""

    name: ClassVar[str] = "generic"
    change_tracking: ClassVar[bool] = False

    def quote(self, identifier: str) -> str:
        """One identifier, quoted: `NIK_IBU` -> `"NIK_IBU"`."""
        return '"' + identifier.replace('"', '""') + '"'

    def table(self, name: str) -> str:
        """A possibly qualified table name, each part quoted: `dbo.LAHIR` -> `"dbo"."LAHIR"`."""
        return ".".join(self.quote(part) for part in name.split("."))

    def column(self, alias: str, name: str) -> str:
        """`t."NIK"`; `*` stays every column of `alias`."""
        return f"{alias}.*" if name == "*" else f"{alias}.{self.quote(name)}"

    def page_sql(self, *, select: str, source: str, where: str, order: str, limit: int) -> str:
        """`SELECT select FROM source [WHERE where] ORDER BY order` limited to `limit` rows."""
        clause = f" WHERE {where}" if where else ""
        return f"SELECT {select} FROM {source}{clause} ORDER BY {order} LIMIT {_count(limit)}"


class GenericDialect(Dialect):
    """PostgreSQL, SQLite, MySQL and other ODBC databases that take `LIMIT`."""


class VersionQueries(Protocol):
    """What the Change Tracking strategy asks the server besides the changes themselves."""

    def current_version(self, cursor: Any) -> int | None: ...

    def min_valid_version(self, cursor: Any, table: str) -> int | None: ...


class TSQLDialect(Dialect):
    """Microsoft SQL Server (ODBC Driver 17/18, FreeTDS)."""

    name: ClassVar[str] = "tsql"
    change_tracking: ClassVar[bool] = True

    def quote(self, identifier: str) -> str:
        return "[" + identifier.replace("]", "]]") + "]"

    def page_sql(self, *, select: str, source: str, where: str, order: str, limit: int) -> str:
        clause = f" WHERE {where}" if where else ""
        return f"SELECT TOP ({_count(limit)}) {select} FROM {source}{clause} ORDER BY {order}"

    # ------------------------------------------------------------ Change Tracking

    CURRENT_VERSION_SQL: ClassVar[str] = "SELECT CHANGE_TRACKING_CURRENT_VERSION()"
    MIN_VALID_VERSION_SQL: ClassVar[str] = "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(?))"

    def current_version(self, cursor: Any) -> int | None:
        """The database's current change version (None: Change Tracking is off)."""
        row = cursor.execute(self.CURRENT_VERSION_SQL).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def min_valid_version(self, cursor: Any, table: str) -> int | None:
        """The oldest version whose changes are still kept for `table` (None: tracking is
        not enabled on the table)."""
        row = cursor.execute(self.MIN_VALID_VERSION_SQL, table).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def changes_sql(self, *, table: str, key: str, columns: Sequence[str], limit: int) -> str:
        """One page of changes after a version, up to a fixed upper version.

        Parameters, in order: the last synchronised version (CHANGETABLE's argument), the
        upper version of this run, then the page position `(version, key)` three times as
        `version, version, key`. Deleted rows come with `hub_op = 'D'` and NULL columns.
        """
        target = self.table(table)
        ct_key = self.column("ct", key)
        select = ", ".join(
            [
                f"ct.SYS_CHANGE_VERSION AS {self.quote(CURSOR_ALIAS)}",
                f"ct.SYS_CHANGE_OPERATION AS {self.quote(OPERATION_ALIAS)}",
                f"{ct_key} AS {self.quote(KEY_ALIAS)}",
                *(self.column("t", name) for name in columns),
            ]
        )
        source = (
            f"CHANGETABLE(CHANGES {target}, ?) AS ct "
            f"LEFT OUTER JOIN {target} AS t ON {self.column('t', key)} = {ct_key}"
        )
        where = (
            "ct.SYS_CHANGE_VERSION <= ? AND (ct.SYS_CHANGE_VERSION > ? OR "
            f"(ct.SYS_CHANGE_VERSION = ? AND {ct_key} > ?))"
        )
        order = f"ct.SYS_CHANGE_VERSION, {ct_key}"
        return self.page_sql(select=select, source=source, where=where, order=order, limit=limit)


DIALECTS: Final = {"generic": GenericDialect, "tsql": TSQLDialect}


def dialect_for(name: str) -> Dialect:
    """`generic` or `tsql`; `ValueError` for anything else."""
    try:
        return DIALECTS[name]()
    except KeyError:
        raise ValueError(f"unknown SQL dialect {name!r} (known: generic, tsql)") from None


def detect_dialect(dbms_name: str) -> Dialect:
    """The dialect for the server an ODBC connection reports (`SQL_DBMS_NAME`)."""
    return TSQLDialect() if "sql server" in dbms_name.casefold() else GenericDialect()


def _count(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("a page holds at least one row")
    return limit
