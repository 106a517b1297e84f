"""The SQL each dialect generates; T-SQL (TOP, Change Tracking) is checked as text because SQL
Server cannot run here (docs/sync.md has the recipe for a real server)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.sqlserver.dialect import (
    GenericDialect,
    TSQLDialect,
    detect_dialect,
    dialect_for,
)
from adapters.sqlserver.source import SQLServerSource


def source(dialect: str, **config: Any) -> SQLServerSource:
    base = {
        "name": "coblong",
        "connection": "DSN=x",
        "table": "dbo.LAHIR",
        "key": "NO_REG",
        "strategy": "cursor",
        "cursor_column": "RV",
        "columns": {
            "nik_ibu": "NIK_IBU",
            "kode_wilayah": ["NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL"],
        },
        "page_rows": 500,
    }
    src = SQLServerSource(base | config)
    src._dialect = dialect_for(dialect)  # no server: the dialect is given
    return src


def test_tsql_cursor_page_uses_top_brackets_and_a_tie_breaking_key():
    sql = source("tsql").cursor_page_sql(first=False)
    assert sql == (
        "SELECT TOP (500) t.[NO_REG] AS [hub_key], t.[RV] AS [hub_cursor], t.[NIK_IBU], "
        "t.[NO_PROP], t.[NO_KAB], t.[NO_KEC], t.[NO_KEL] FROM [dbo].[LAHIR] AS t "
        "WHERE t.[RV] IS NOT NULL AND (t.[RV] > ? OR (t.[RV] = ? AND t.[NO_REG] > ?)) "
        "ORDER BY t.[RV], t.[NO_REG]"
    )


def test_generic_cursor_page_uses_limit_and_double_quotes():
    sql = source("generic").cursor_page_sql(first=True)
    assert sql == (
        'SELECT t."NO_REG" AS "hub_key", t."RV" AS "hub_cursor", t."NIK_IBU", t."NO_PROP", '
        't."NO_KAB", t."NO_KEC", t."NO_KEL" FROM "dbo"."LAHIR" AS t WHERE t."RV" IS NOT NULL '
        'ORDER BY t."RV", t."NO_REG" LIMIT 500'
    )


def test_query_sources_are_paged_as_a_derived_table():
    src = source("tsql", table=None, query="SELECT * FROM dbo.LAHIR WHERE TAHUN = 2025")
    sql = src.key_page_sql(first=False, data=False, limit=50000)
    assert sql == (
        "SELECT TOP (50000) t.[NO_REG] AS [hub_key] FROM (SELECT * FROM dbo.LAHIR WHERE "
        "TAHUN = 2025) AS t WHERE t.[NO_REG] IS NOT NULL AND t.[NO_REG] > ? ORDER BY t.[NO_REG]"
    )


def test_change_tracking_sql():
    sql = TSQLDialect().changes_sql(
        table="dbo.LAHIR", key="NO_REG", columns=["NIK_IBU"], limit=1000
    )
    assert sql == (
        "SELECT TOP (1000) ct.SYS_CHANGE_VERSION AS [hub_cursor], ct.SYS_CHANGE_OPERATION AS "
        "[hub_op], ct.[NO_REG] AS [hub_key], t.[NIK_IBU] FROM CHANGETABLE(CHANGES "
        "[dbo].[LAHIR], ?) AS ct LEFT OUTER JOIN [dbo].[LAHIR] AS t ON t.[NO_REG] = ct.[NO_REG] "
        "WHERE ct.SYS_CHANGE_VERSION <= ? AND (ct.SYS_CHANGE_VERSION > ? OR "
        "(ct.SYS_CHANGE_VERSION = ? AND ct.[NO_REG] > ?)) ORDER BY ct.SYS_CHANGE_VERSION, ct.[NO_REG]"
    )
    every = TSQLDialect().changes_sql(table="LAHIR", key="ID", columns=["*"], limit=5)
    assert "t.*" in every


class _Cursor:
    def __init__(self, answer: Any) -> None:
        self.answer, self.seen = answer, []

    def execute(self, sql: str, *params: Any) -> _Cursor:
        self.seen.append((sql, params))
        return self

    def fetchone(self) -> Any:
        return self.answer


def test_change_tracking_version_queries():
    dialect = TSQLDialect()
    cursor = _Cursor((42,))
    assert dialect.current_version(cursor) == 42
    assert dialect.min_valid_version(cursor, "dbo.LAHIR") == 42
    assert cursor.seen == [
        ("SELECT CHANGE_TRACKING_CURRENT_VERSION()", ()),
        ("SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(?))", ("dbo.LAHIR",)),
    ]
    assert dialect.current_version(_Cursor((None,))) is None  # tracking off


def test_identifiers_cannot_break_out_of_their_quotes():
    assert TSQLDialect().quote("A]B") == "[A]]B]"
    assert GenericDialect().quote('A"B') == '"A""B"'


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_a_page_needs_a_positive_integer_limit(limit):
    with pytest.raises(ValueError, match="at least one row"):
        GenericDialect().page_sql(select="1", source="t", where="", order="1", limit=limit)


def test_dialect_names():
    assert isinstance(detect_dialect("Microsoft SQL Server"), TSQLDialect)
    assert isinstance(detect_dialect("PostgreSQL"), GenericDialect)
    assert isinstance(detect_dialect("SQLite"), GenericDialect)
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        dialect_for("oracle")
