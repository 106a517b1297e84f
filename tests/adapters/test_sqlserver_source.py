"""SQLServerSource through real ODBC drivers (SQLite3 and PostgreSQL Unicode), and its inputs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.sqlserver.source import (
    SQLServerSource,
    decode_value,
    encode_value,
    to_cell,
)
from hub.errors import ConfigError, SourceError
from tests.adapters.legacy_db import MAPPING, LegacyDB, birth, open_legacy


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LegacyDB]:
    yield from open_legacy(request.param, tmp_path)


def config(db: LegacyDB | None = None, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "coblong",
        "connection": db.connection if db else "DSN=none",
        "table": db.table if db else "LAHIR",
        "key": "NO_REG",
        "strategy": "cursor",
        "cursor_column": "RV",
        "columns": MAPPING,
        "page_rows": 3,
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def test_pages_keep_legacy_cells_and_provenance(legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 5)])
    with SQLServerSource(config(legacy)) as source:
        pages = list(source.pages(None))
    assert [len(p.rows) for p in pages] == [3, 1]
    header = pages[0].header
    assert header.cells == tuple(MAPPING)
    first = pages[0].rows[0]
    nik = first.cells[list(MAPPING).index("nik_ibu")]
    assert nik == 3273014507900001
    assert not isinstance(nik, str)  # numeric, as in the table
    assert first.cells[list(MAPPING).index("kode_wilayah")] == "32-73-1-1001"
    assert first.cells[list(MAPPING).index("tanggal_lahir")] == "17/08/2025"
    assert (first.provenance.source, first.provenance.row) == ("sqlserver", 1)
    assert first.provenance.position == f"coblong:{legacy.table}#1"
    assert pages[-1].position == {"strategy": "cursor", "cursor": {"t": "int", "v": 4}, "key": 4}


def test_without_a_mapping_the_columns_come_as_the_server_names_them(legacy: LegacyDB):
    legacy.insert([birth(1)])
    with SQLServerSource(config(legacy, columns=None)) as source:
        page = next(source.pages(None))
    assert page.header.cells[:3] == ("NO_REG", "NAMA_LGKP", "JENIS_KLMIN")
    assert page.header.cells[-1] == "RV"


def test_read_yields_the_header_then_every_row(legacy: LegacyDB):
    legacy.insert([birth(reg) for reg in range(1, 6)])
    rows = list(SQLServerSource(config(legacy)).read())
    assert [r.provenance.row for r in rows] == [0, 1, 2, 3, 4, 5]
    after = list(
        SQLServerSource(config(legacy)).read(
            '{"strategy": "cursor", "cursor": {"t": "int", "v": 3}, "key": 3}'
        )
    )
    assert [r.provenance.row for r in after] == [0, 4, 5]


def test_a_region_with_a_missing_part_is_an_empty_cell(legacy: LegacyDB):
    legacy.insert([birth(1) | {"NO_KEC": None}])
    with SQLServerSource(config(legacy)) as source:
        row = next(source.pages(None)).rows[0]
    assert row.cells[list(MAPPING).index("kode_wilayah")] is None


def test_a_key_that_is_not_an_integer_stops_the_read(legacy: LegacyDB):
    legacy.insert([birth(1)])
    with (
        SQLServerSource(config(legacy, key="NAMA_LGKP")) as source,
        pytest.raises(SourceError, match="bilangan bulat"),
    ):
        list(source.pages(None))


def test_an_unknown_column_is_a_source_error(legacy: LegacyDB):
    legacy.insert([birth(1)])
    with (
        SQLServerSource(config(legacy, cursor_column="TIDAK_ADA")) as source,
        pytest.raises(SourceError, match="menolak kueri"),
    ):
        list(source.pages(None))


def test_connection_errors_never_show_the_connection_string():
    secret = "DRIVER={PostgreSQL Unicode};Server=127.0.0.1;Port=1;Database=x;UID=sa;PWD=Rahasia-Sekali-99"
    source = SQLServerSource(config(connection=secret, login_timeout=2))
    with pytest.raises(SourceError) as caught:
        list(source.pages(None))
    message = str(caught.value)
    assert "tidak dapat dihubungi" in message
    assert "Rahasia-Sekali-99" not in message
    assert secret not in message
    assert "Rahasia" not in repr(source)


def test_a_missing_driver_is_a_source_error():
    source = SQLServerSource(config(connection="DRIVER={Tidak Ada};PWD=abc12345"))
    with pytest.raises(SourceError) as caught:
        list(source.pages(None))
    assert "abc12345" not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"table": None}, "exactly one of table or query"),
        ({"query": "SELECT 1"}, "exactly one of table or query"),
        ({"cursor_column": None}, "needs cursor_column"),
        ({"strategy": "sometimes"}, "unknown strategy"),
        ({"key": "NO REG; DROP TABLE x"}, "not a column name"),
        ({"cursor_column": "RV--"}, "not a column name"),
        ({"columns": {"nik_ibu": []}}, "at least one column"),
        ({"columns": {"nik_ibu": "NIK]; DROP"}}, "not a column name"),
        ({"strategy": "change_tracking", "table": None, "query": "SELECT 1"}, "needs a table"),
    ],
)
def test_bad_configuration(changes, message):
    with pytest.raises(ConfigError, match=message):
        SQLServerSource(config(**changes))


@pytest.mark.parametrize(
    "value",
    [7, Decimal("12.50"), 1.5, dt.datetime(2025, 8, 17, 8, 30, 1, 123000, tzinfo=dt.UTC), dt.date(2025, 8, 17),
     b"\x00\x00\x00\x00\x00\x00\x07\xd1", "2025-08-17T08:30"],
)  # fmt: skip
def test_cursor_values_survive_the_round_trip(value):
    assert decode_value(encode_value(value)) == value


def test_unsupported_cursor_type():
    with pytest.raises(SourceError, match="tidak didukung"):
        encode_value(object())


def test_driver_values_become_cells():
    assert to_cell(Decimal("3273014507900001")) == 3273014507900001
    assert to_cell(Decimal("3.2")) == 3.2
    assert to_cell(b"\x01\xff") == "01ff"
    assert to_cell(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert to_cell(Decimal("NaN")) == "NaN"
    assert to_cell("  teks ") == "  teks "  # text as read
