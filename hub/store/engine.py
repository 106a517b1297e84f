"""Engines for the two supported databases, migrations to head, and the bulk hot paths
(`bulk_insert`, `bulk_update`, `select_in`).

```python
engine = create_engine_from_settings(settings)
upgrade(engine)
with engine.begin() as conn:
    bulk_insert(conn, tables.wilayah, ("kode", "nama", "level", "induk", "nama_cari"), rows)
```
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy import event

from hub.settings import Settings, normalise_database_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

MIGRATIONS: Final = Path(__file__).with_name("migrations")

#: How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000

#: Page size of new SQLite stores (see `configure_sqlite`).
SQLITE_PAGE_SIZE: Final = 16_384

_MIGRATION_LOCK_ID: Final = 0x4C414D504944  # "LAMPID"
_PLACEHOLDERS: Final = {"qmark": "?", "format": "%s", "pyformat": "%s"}
#: Statement text of `bulk_insert` and `bulk_update`, by dialect, table and columns.
_statements: dict[tuple[str, str, str, tuple[str, ...]], str] = {}
#: Values per `select_in` query: SQLite binds at most 32,766 parameters, PostgreSQL 65,535.
SELECT_IN_CHUNK: Final = 900


def create_engine_from_settings(settings: Settings, **kwargs: Any) -> sa.Engine:
    """An engine for `settings.database_url`; extra `kwargs` go to `sqlalchemy.create_engine`.

    SQLite: the parent directory is created and every connection gets WAL journaling,
    `synchronous=NORMAL`, foreign keys on and a busy timeout. PostgreSQL: psycopg 3, with a
    pre-ping so that connections dropped by the server are replaced instead of failing a request.
    """
    url = sa.make_url(normalise_database_url(settings.database_url))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", configure_sqlite)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def configure_sqlite(dbapi_connection: sqlite3.Connection, _record: object = None) -> None:
    """The settings every SQLite connection of the hub gets (a SQLAlchemy `connect` hook)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: WAL may wait
        # Before WAL: the page size of a new, empty database file (an existing one keeps its
        # own). A record is about 1.4 KB; 16 KiB pages cut the cost of writing a big batch.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 64 MiB of page cache (the default is 2 MiB): the unique natural-key index of a big
        # batch stays in memory instead of being re-read for every random key.
        cursor.execute("PRAGMA cache_size=-65536")
    finally:
        cursor.close()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini), optionally bound to `connection`."""
    from alembic.config import Config  # alembic loads only when migrating

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def compare_server_default(
    context: MigrationContext,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
    inspected_default: str | None,
    metadata_default: object,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic hook: on SQLite, treat `DEFAULT ''` as equal to `server_default=""`.

    Alembic's SQLite comparison strips quotes only from non-empty literals and so reports an
    empty-string default as changed forever. Other cases fall through to Alembic (None).
    """
    if context.dialect.name != "sqlite" or inspected_default is None:
        return None
    if rendered_metadata_default is None:
        return None

    def literal(text: str) -> str:
        text = text.strip()
        while text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        if len(text) >= 2 and text[0] == text[-1] == "'":
            text = text[1:-1].replace("''", "'")
        return text

    return literal(inspected_default) != literal(rendered_metadata_default)


#: The newest migration (`hub/store/migrations/versions/`); a test keeps the two equal.
HEAD_REVISION = "0006"


def _at_head(engine: sa.Engine) -> bool:
    """Whether the store already is at `HEAD_REVISION` (one query; False when unsure)."""
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except sa.exc.DBAPIError:
        return False  # a new store: no alembic_version table yet
    return found == [(HEAD_REVISION,)]


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run the migrations up to `revision` in one transaction.

    Processes that start together (N API and M worker processes) may all call this: the first
    takes a lock (a PostgreSQL advisory lock, SQLite's write lock), the others wait and then
    find the store already at `revision`.
    """
    if revision == "head" and _at_head(engine):
        return  # the common case at every start: no need to load Alembic and the migrations
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        command.upgrade(alembic_config(conn), revision)


def bulk_insert(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert `rows` (tuples in `columns` order) with one driver-level executemany.

    The hot path: SQLAlchemy's compiled dict executemany costs several times the raw driver,
    so the INSERT text is built once per (dialect, table, columns) with the driver's positional
    placeholder and handed to `exec_driver_sql`. Values must already be what the driver takes
    (str, int, float, bytes, None): no SQLAlchemy type processing happens here.
    """
    if not rows:
        return
    conn.exec_driver_sql(_statement(conn, table, tuple(columns), _build_insert), rows)


def bulk_update(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    key: str,
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Set `columns` of the rows whose `key` column is each tuple's last value, the others
    in `columns` order, with one driver-level executemany (as `bulk_insert` inserts)."""
    if not rows:
        return
    conn.exec_driver_sql(_statement(conn, table, (*columns, "=", key), _build_update), rows)


def _statement(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    build: Callable[[sa.Dialect, sa.Table, tuple[str, ...]], str],
) -> str:
    """The statement `build` makes for (dialect, table, columns), built once."""
    dialect = conn.dialect
    key = (dialect.name, dialect.paramstyle, table.fullname, columns)
    sql = _statements.get(key)
    if sql is None:
        sql = _statements[key] = build(dialect, table, columns)
    return sql


def select_in(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    where: Mapping[str, Any],
    column: str,
    values: Sequence[Any],
) -> Iterator[tuple[Any, ...]]:
    """Rows (tuples in `columns` order) of `table` whose `column` is one of `values` and
    whose `where` columns equal their values, `SELECT_IN_CHUNK` values per query.

    The lookup twin of `bulk_insert`: the statement text is built with the driver's
    placeholder and run through `exec_driver_sql`, without SQLAlchemy's expanding IN, which
    processes every bound value and costs about twice the query itself. Values must be what
    the driver takes; results come back as the driver gives them (bytes for blobs).
    """
    dialect = conn.dialect
    placeholder = _placeholder(dialect)
    quote = dialect.identifier_preparer.quote
    _check_columns(table, (*columns, *where, column))
    conditions = "".join(f"{quote(c)} = {placeholder} AND " for c in where)
    head = (
        f"SELECT {', '.join(quote(c) for c in columns)} "
        f"FROM {dialect.identifier_preparer.format_table(table)} "
        f"WHERE {conditions}{quote(column)} IN "
    )
    fixed = tuple(where.values())
    for start in range(0, len(values), SELECT_IN_CHUNK):
        chunk = tuple(values[start : start + SELECT_IN_CHUNK])
        marks = ", ".join([placeholder] * len(chunk))
        yield from conn.exec_driver_sql(f"{head}({marks})", fixed + chunk)


def _placeholder(dialect: sa.Dialect) -> str:
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        raise ValueError(f"paramstyle {dialect.paramstyle!r} is not supported")
    return placeholder


def _build_insert(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> str:
    _check_columns(table, columns)
    placeholder = _placeholder(dialect)
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join([placeholder] * len(columns))
    target = dialect.identifier_preparer.format_table(table)
    return f"INSERT INTO {target} ({names}) VALUES ({marks})"


def _build_update(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> str:
    """`columns` is the columns to set, "=", the key column."""
    *assigned, _, key = columns
    _check_columns(table, assigned)
    _check_columns(table, (key,))
    placeholder = _placeholder(dialect)
    quote = dialect.identifier_preparer.quote
    assignments = ", ".join(f"{quote(c)} = {placeholder}" for c in assigned)
    target = dialect.identifier_preparer.format_table(table)
    return f"UPDATE {target} SET {assignments} WHERE {quote(key)} = {placeholder}"


def _check_columns(table: sa.Table, columns: Sequence[str]) -> None:
    unknown = [c for c in columns if c not in table.c]
    if unknown or not columns:
        raise ValueError(f"table {table.name} has no columns {unknown}")
