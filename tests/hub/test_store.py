"""Engines, migrations and the bulk-insert path, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from hub.settings import Settings
from hub.store import (
    alembic_config,
    bulk_insert,
    bulk_update,
    create_engine_from_settings,
    select_in,
    upgrade,
)
from hub.store import engine as store_engine
from hub.store.engine import HEAD_REVISION, MIGRATIONS, compare_server_default
from hub.store.tables import audit_head, batches, metadata, records

BATCH_COLUMNS = ("record_type", "schema_version", "source", "file_name", "status", "rows")
BATCH_COLUMNS += ("actor", "created_at")
NOW = "2025-11-22T06:00:00.000Z"


def batch_row(i: int) -> tuple[object, ...]:
    return ("kelahiran", 1, "csv", f"lahir-{i}.csv", "done", i, "operator", NOW)


def record_row(i: int, batch_id: int | None = None) -> tuple[object, ...]:
    key = i.to_bytes(16, "big")
    return (
        "kelahiran", 1, key, None, "32.73.01.1001", "2025-07-01", "valid", 1, batch_id,
        f"line {i}", "{}", b"\x01\x01" + bytes(40), key, NOW, NOW,
    )  # fmt: skip


RECORD_COLUMNS = (
    "record_type", "schema_version", "natural_key", "subject_bi", "kode_wilayah", "event_date",
    "status", "version", "batch_id", "row_ref", "data", "pii", "content_hash", "created_at",
    "updated_at",
)  # fmt: skip


def diff_against_tables(conn: sa.Connection) -> list[object]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": compare_server_default}
    )
    return list(compare_metadata(context, metadata))


# ------------------------------------------------------------------ migrations


def test_head_matches_the_tables_exactly(engine):
    with engine.connect() as conn:
        assert diff_against_tables(conn) == []
        tables = set(sa.inspect(conn).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_upgrade_is_idempotent_and_records_the_head(engine):
    upgrade(engine)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head == HEAD_REVISION
        assert conn.execute(sa.select(audit_head)).all() == [(1, 0, "0" * 64)]


def test_a_store_at_head_opens_without_alembic(engine, monkeypatch):
    from alembic import command

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Alembic ran for a store already at head")

    monkeypatch.setattr(command, "upgrade", refuse)
    upgrade(engine)  # at head: one query, no migration machinery


def test_a_store_behind_head_is_still_migrated(engine):
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0005")
    upgrade(engine)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == HEAD_REVISION


def test_downgrade_to_base_and_back(engine):
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == {"alembic_version"}
    upgrade(engine)
    with engine.connect() as conn:
        assert diff_against_tables(conn) == []


def test_empty_store_differs_from_the_tables(database_url, tmp_path):
    """The comparison is not vacuous: a store without the migration shows every table."""
    engine = create_engine_from_settings(Settings(database_url, tmp_path, None, tmp_path / "k"))
    try:
        with engine.connect() as conn:
            diff = diff_against_tables(conn)
        assert {d[1].name for d in diff if d[0] == "add_table"} == set(metadata.tables)
    finally:
        engine.dispose()


def test_processes_starting_together_migrate_once(database_url, tmp_path):
    settings = Settings(database_url, tmp_path, None, tmp_path / "k")
    engines = [create_engine_from_settings(settings) for _ in range(3)]
    errors: list[BaseException] = []

    def start(engine: sa.Engine) -> None:
        try:
            upgrade(engine)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with engines[0].connect() as conn:
            assert diff_against_tables(conn) == []
    finally:
        for engine in engines:
            engine.dispose()


def test_migration_files_ship_with_the_package():
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    assert (MIGRATIONS / "versions" / "0001_initial.py").is_file()


# ------------------------------------------------------------------ engines


def test_sqlite_connection_settings(tmp_path):
    path = tmp_path / "deep" / "er" / "hub.db"
    engine = create_engine_from_settings(
        Settings.from_env({"HUB_DATABASE_URL": f"sqlite:///{path}"})
    )
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in (
                    "journal_mode", "synchronous", "foreign_keys", "busy_timeout", "page_size"
                )
            }  # fmt: skip
        assert pragma == {
            "page_size": store_engine.SQLITE_PAGE_SIZE,
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "busy_timeout": store_engine.SQLITE_BUSY_TIMEOUT_MS,
        }
        assert path.is_file()
    finally:
        engine.dispose()


def test_an_existing_sqlite_store_keeps_its_page_size(tmp_path):
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as old:
        old.execute("PRAGMA page_size=4096")
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("CREATE TABLE kept (x)")
        old.execute("INSERT INTO kept VALUES (1)")
        old.commit()
    engine = create_engine_from_settings(
        Settings.from_env({"HUB_DATABASE_URL": f"sqlite:///{path}"})
    )
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
            assert conn.exec_driver_sql("SELECT x FROM kept").scalar() == 1
    finally:
        engine.dispose()


def test_postgresql_urls_use_psycopg_3():
    settings = Settings("postgresql://u@127.0.0.1:1/db", Path("."), None, Path("k"))
    engine = create_engine_from_settings(settings)
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_foreign_keys_are_enforced(engine):
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        bulk_insert(conn, records, RECORD_COLUMNS, [record_row(1, batch_id=999)])


def test_compare_server_default_hook_only_speaks_for_sqlite():
    def context(name):
        return SimpleNamespace(dialect=SimpleNamespace(name=name))

    assert compare_server_default(context("postgresql"), None, None, "''", None, "''") is None
    assert compare_server_default(context("sqlite"), None, None, "('')", None, "''") is False
    assert compare_server_default(context("sqlite"), None, None, "'0'", None, "'1'") is True


# ------------------------------------------------------------------ bulk insert


def test_bulk_insert_writes_every_value(engine):
    with engine.begin() as conn:
        bulk_insert(conn, batches, BATCH_COLUMNS, [batch_row(i) for i in range(1, 4)])
        batch_id = conn.execute(sa.select(sa.func.min(batches.c.id))).scalar_one()
        bulk_insert(conn, records, RECORD_COLUMNS, [record_row(i, batch_id) for i in range(500)])
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(*(records.c[name] for name in RECORD_COLUMNS)).order_by(records.c.id)
        ).all()
        counted = conn.execute(sa.select(batches.c.rows).order_by(batches.c.id)).scalars().all()
    assert [tuple(row) for row in stored] == [record_row(i, batch_id) for i in range(500)]
    assert counted == [1, 2, 3]  # "rows" is quoted where it needs to be


def test_bulk_insert_is_part_of_the_callers_transaction(engine):
    conn = engine.connect()
    with conn:
        transaction = conn.begin()
        bulk_insert(conn, batches, BATCH_COLUMNS, [batch_row(1)])
        transaction.rollback()  # a crash after the insert
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one() == 0


def test_bulk_insert_reports_constraint_violations_as_sqlalchemy_errors(engine):
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        bulk_insert(conn, records, RECORD_COLUMNS, [record_row(1), record_row(1)])


def test_bulk_insert_of_nothing_does_nothing(engine):
    with engine.begin() as conn:
        bulk_insert(conn, batches, BATCH_COLUMNS, [])


def test_bulk_insert_refuses_unknown_columns(engine):
    with engine.begin() as conn, pytest.raises(ValueError, match="no columns"):
        bulk_insert(conn, batches, ("record_type", "nope"), [("kelahiran", 1)])


def test_bulk_insert_builds_its_sql_once(engine):
    with engine.begin() as conn:
        bulk_insert(conn, batches, BATCH_COLUMNS, [batch_row(1)])
        key = (conn.dialect.name, conn.dialect.paramstyle, "batches", BATCH_COLUMNS)
        sql = store_engine._statements[key]
        bulk_insert(conn, batches, BATCH_COLUMNS, [batch_row(2)])
        assert store_engine._statements[key] is sql
    placeholder = "?" if engine.dialect.name == "sqlite" else "%s"
    assert sql.endswith(f"({', '.join([placeholder] * len(BATCH_COLUMNS))})")


def test_select_in_finds_every_match_across_chunks(engine):
    n = 2 * store_engine.SELECT_IN_CHUNK + 7
    with engine.begin() as conn:
        bulk_insert(conn, records, RECORD_COLUMNS, [record_row(i) for i in range(n)])
        conn.execute(records.update().where(records.c.id % 3 == 0).values(record_type="kematian"))
    wanted = [i.to_bytes(16, "big") for i in range(0, n, 2)] + [b"\xff" * 16]  # one held by none
    with engine.connect() as conn:
        found = list(
            select_in(conn, records, ("natural_key", "row_ref"), {}, "natural_key", wanted)
        )
        births = list(
            select_in(conn, records, ("id",), {"record_type": "kelahiran"}, "natural_key", wanted)
        )
        nothing = list(select_in(conn, records, ("id",), {}, "natural_key", []))
    assert sorted((bytes(key), ref) for key, ref in found) == [
        (i.to_bytes(16, "big"), f"line {i}") for i in range(0, n, 2)
    ]
    assert sorted(row[0] for row in births) == [
        i + 1 for i in range(0, n, 2) if (i + 1) % 3 != 0
    ]  # ids start at 1
    assert nothing == []


def test_select_in_refuses_unknown_columns(engine):
    with engine.connect() as conn, pytest.raises(ValueError, match="no columns"):
        list(select_in(conn, records, ("id",), {"nope": 1}, "natural_key", [b"x"]))


def test_bulk_update_sets_the_columns_of_each_keyed_row(engine):
    with engine.begin() as conn:
        bulk_insert(conn, records, RECORD_COLUMNS, [record_row(i) for i in range(5)])
        ids = conn.execute(sa.select(records.c.id).order_by(records.c.id)).scalars().all()
        bulk_update(
            conn,
            records,
            ("status", "route", "step"),
            "id",
            [("queued", "lahir", 0, ids[1]), ("awaiting_approval", "lahir", 1, ids[3])],
        )
        bulk_update(conn, records, ("status",), "id", [])  # nothing to do
    with engine.connect() as conn:
        got = conn.execute(
            sa.select(records.c.status, records.c.route, records.c.step).order_by(records.c.id)
        ).all()
    assert [tuple(row) for row in got] == [
        ("valid", None, None),
        ("queued", "lahir", 0),
        ("valid", None, None),
        ("awaiting_approval", "lahir", 1),
        ("valid", None, None),
    ]


def test_bulk_update_refuses_unknown_columns(engine):
    with engine.begin() as conn, pytest.raises(ValueError, match="no columns"):
        bulk_update(conn, records, ("status",), "nope", [("queued", 1)])
