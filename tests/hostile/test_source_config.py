"""SQL injection through the source configuration of `routes.yaml`: every identifier the hub
writes into SQL (table, key, cursor column, mapped columns) is checked on load and quoted
when written, so nothing but a name reaches the statement."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.sqlserver.dialect import GenericDialect, TSQLDialect
from hub.schemas import SchemaRegistry
from tests.hub.test_sync_config import MAPPING, problems, with_source

INJECTIONS = [
    "LAHIR; DROP TABLE records",
    "LAHIR--",
    "LAHIR/*x*/",
    "x' OR '1'='1",
    'NIK"; DELETE FROM t; --',
    "NIK]; DELETE FROM t; --",
    "a\nb",
    "",
]


@pytest.fixture(scope="module")
def schemas() -> SchemaRegistry:
    return SchemaRegistry.load()


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize(
    "where",
    ["table", "key", "cursor", "column"],
)
def test_identifiers_that_are_not_names_are_refused_on_load(
    schemas: SchemaRegistry, where: str, value: str
) -> None:
    changes: dict[str, Any] = {
        "table": {"table": value},
        "key": {"key": value},
        "cursor": {"incremental": {"strategy": "cursor", "column": value}},
        "column": {"columns": {**MAPPING, "nama_bayi": value}},
    }[where]
    found = problems(schemas, sources=with_source(**changes))
    assert found, f"{where} = {value!r} was accepted"
    assert any("sources.coblong" in p for p in found), found


@pytest.mark.parametrize("dialect", [GenericDialect(), TSQLDialect()])
def test_quoting_doubles_the_closing_quote(dialect: Any) -> None:
    for name in ('NIK"; DROP TABLE t; --', "NIK]; DROP TABLE t; --"):
        quoted = dialect.quote(name)
        inner = quoted[1:-1]
        closing = quoted[-1]
        # the closing quote character only ever appears doubled inside the identifier
        assert inner.replace(closing * 2, "").count(closing) == 0, quoted
