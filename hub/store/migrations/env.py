"""Alembic environment: migrates the connection `hub.store.upgrade` hands over.

Run from code (`hub.store.upgrade(engine)`); without a bound connection, the database of
`Settings.from_env()` is used, so `alembic` commands work with a config built by
`hub.store.alembic_config()`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from hub.store.engine import compare_server_default, create_engine_from_settings
from hub.store.tables import metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER via table copy
        compare_type=True,
        compare_server_default=compare_server_default,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    from hub.settings import Settings

    engine = create_engine_from_settings(Settings.from_env())
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run hub.store.upgrade()")
run_migrations_online()
