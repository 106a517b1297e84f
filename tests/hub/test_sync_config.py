"""routes.yaml `sources:` and `jobs:`: every mistake reported with its path, no secret echoed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub.errors import ConfigError, ConfigValidationError
from hub.routes import Schedule, parse_routes
from hub.schemas import SchemaRegistry
from tests.adapters.legacy_db import MAPPING
from tests.routing import SANDBOX_ENV, shipped_routes

SECRET = "DRIVER={ODBC Driver 18 for SQL Server};SERVER=10.1.2.3;UID=hub;PWD=Sup3r-Rahasia!"
ENV = {**SANDBOX_ENV, "HUB_SRC_COBLONG": SECRET}

SOURCE: dict[str, Any] = {
    "adapter": "sqlserver",
    "connection": "${HUB_SRC_COBLONG}",
    "record_type": "kelahiran",
    "table": "dbo.LAHIR",
    "key": "NO_REG",
    "columns": MAPPING,
    "incremental": {"strategy": "cursor", "column": "RV"},
    "page_rows": 2000,
    "schedule": {"cron": "*/15 * * * *"},
}


@pytest.fixture(scope="module")
def schemas() -> SchemaRegistry:
    return SchemaRegistry.load()


def parse(
    schemas: SchemaRegistry, sources: Any = None, jobs: Any = None, env: Any = None, **kw: Any
):
    document = shipped_routes()
    if sources is not None:
        document["sources"] = sources
    if jobs is not None:
        document["jobs"] = jobs
    return parse_routes(document, ENV if env is None else env, schemas=schemas, **kw)


def problems(schemas: SchemaRegistry, **kw: Any) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        parse(schemas, **kw)
    return caught.value.errors


def with_source(**changes: Any) -> dict[str, Any]:
    source = copy.deepcopy(SOURCE) | changes
    return {"coblong": {k: v for k, v in source.items() if v is not None}}


def test_a_source_is_read_with_its_connection_from_the_environment(schemas):
    routes = parse(schemas, sources=with_source(), jobs={"reconcile": {"cron": "30 1 * * *"}})
    source = routes.sources["coblong"]
    assert source.connection == SECRET
    assert SECRET not in repr(source)
    assert (source.strategy, source.cursor_column, source.page_rows) == ("cursor", "RV", 2000)
    assert source.columns is not None
    assert source.columns["kode_wilayah"] == ("NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL")
    assert source.schedule == Schedule(cron="*/15 * * * *")
    assert routes.jobs["reconcile"].schedule == Schedule(cron="30 1 * * *")
    adapter = source.as_adapter_config()
    assert adapter["connection"] == SECRET
    assert adapter["columns"]["kode_wilayah"] == ["NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"connection": SECRET}, "sources.coblong.connection: connection strings come from the environment only"),
        ({"connection": "${HUB_SRC_COBLONG:-DSN=x;PWD=zz}"}, "sources.coblong.connection: connection strings come from the environment only"),
        ({"connection": "${HUB_NOT_SET}"}, "sources.coblong.connection: environment variable HUB_NOT_SET is not set"),
        ({"record_type": "nikah"}, "sources.coblong.record_type: 'nikah' is not a record type"),
        ({"adapter": "oracle"}, "sources.coblong.adapter:"),
        ({"query": "SELECT * FROM LAHIR"}, "sources.coblong: give exactly one of table or query"),
        ({"table": None}, "sources.coblong: give exactly one of table or query"),
        ({"table": "dbo.LAHIR; DROP TABLE x"}, "sources.coblong.table: 'dbo.LAHIR; DROP TABLE x' must be a table name"),
        ({"key": "NO REG;--"}, "sources.coblong.key: 'NO REG;--' must be a column name"),
        ({"incremental": {"strategy": "cursor"}}, "sources.coblong.incremental: strategy cursor needs column"),
        ({"incremental": {"strategy": "full", "column": "RV"}}, "sources.coblong.incremental.column: only strategy cursor takes a column"),
        ({"incremental": {"strategy": "sometimes"}}, "sources.coblong.incremental.strategy:"),
        ({"incremental": {"strategy": "change_tracking"}, "table": None, "query": "SELECT * FROM LAHIR"}, "change_tracking reads a table, not a query"),
        ({"incremental": {"strategy": "change_tracking"}, "dialect": "generic"}, "sources.coblong.dialect: change_tracking needs SQL Server"),
        ({"columns": {**MAPPING, "nama_kucing": "KUCING"}}, "sources.coblong.columns.nama_kucing: 'nama_kucing' is not a field of kelahiran"),
        ({"columns": {"nik_ibu": "NIK_IBU"}}, "sources.coblong.columns: required field(s) of kelahiran not mapped: nama_bayi"),
        ({"columns": {**MAPPING, "kode_wilayah": ["A", "B", "C", "D", "E"]}}, "sources.coblong.columns.kode_wilayah:"),
        ({"kelurahan": "32.73.1"}, "sources.coblong.kelurahan: '32.73.1' must be a region code"),
        ({"page_rows": 0}, "sources.coblong.page_rows:"),
        ({"schedule": {"cron": "every day please"}}, "sources.coblong.schedule.cron: not a crontab line"),
        ({"schedule": {"cron": "0 2 * * *", "interval": 60}}, "sources.coblong.schedule: give exactly one of cron or interval"),
        ({"schedule": {"interval": 1}}, "sources.coblong.schedule.interval:"),
        ({"schedule": {"interval": 60, "timezone": "Asia/Bandung"}}, "sources.coblong.schedule.timezone: unknown time zone"),
        ({"password": "x"}, "sources.coblong: Additional properties are not allowed"),
    ],
)  # fmt: skip
def test_bad_sources_are_reported_with_their_path(schemas, changes, expected):
    found = problems(schemas, sources=with_source(**changes))
    assert any(p.startswith(expected) or expected in p for p in found), found
    assert not any("Sup3r-Rahasia" in p or "PWD=zz" in p for p in found)


def test_bad_jobs_are_reported(schemas):
    found = problems(
        schemas,
        jobs={"cuci_piring": {"interval": 60}, "reconcile": {"cron": "61 * * * *"}, "aggregates": {"enable": True}},
    )  # fmt: skip
    assert any(p.startswith("jobs.cuci_piring: no built-in job named 'cuci_piring'") for p in found)
    assert any(p.startswith("jobs.reconcile.cron: not a crontab line") for p in found)
    assert any(p.startswith("jobs.aggregates: Additional properties") for p in found)


def test_an_unset_connection_only_stops_that_source(schemas):
    env = {k: v for k, v in ENV.items() if k != "HUB_SRC_COBLONG"}
    routes = parse(schemas, sources=with_source(), env=env, require_credentials=False)
    source = routes.sources["coblong"]
    assert source.missing_credentials == ("HUB_SRC_COBLONG",)
    with pytest.raises(ConfigError, match="HUB_SRC_COBLONG not set"):
        source.as_adapter_config()


def test_a_job_can_be_turned_off_without_a_schedule(schemas):
    routes = parse(schemas, jobs={"aggregates": {"enabled": False}})
    assert routes.jobs["aggregates"].enabled is False
    assert routes.jobs["aggregates"].schedule is None


def test_the_shipped_routes_still_load_without_sources(schemas):
    routes = parse(schemas)
    assert dict(routes.sources) == {}


def test_the_commented_example_in_the_shipped_routes_is_valid(schemas):
    from hub.routes import read_yaml
    from tests.routing import ROOT

    text = (ROOT / "routes.yaml").read_text("utf-8")
    example = text[text.index("# sources:") :].splitlines()
    lines = [line[2:] for line in example if line.startswith(("# sources:", "# jobs:", "#   "))]
    document = shipped_routes() | read_yaml("\n".join(lines))
    routes = parse_routes(document, {**ENV, "HUB_SRC_COBLONG": SECRET}, schemas=schemas)
    assert routes.sources["coblong_lahir"].schedule == Schedule(cron="*/15 * * * *")
    assert set(routes.jobs) == {"reconcile", "aggregates", "deliveries"}
