"""The store: SQLAlchemy Core tables (`hub.store.tables`), engines, migrations, bulk inserts
and lookups."""

from __future__ import annotations

from hub.store.engine import (
    alembic_config,
    bulk_insert,
    bulk_update,
    create_engine_from_settings,
    select_in,
    upgrade,
)

__all__ = [
    "alembic_config",
    "bulk_insert",
    "bulk_update",
    "create_engine_from_settings",
    "select_in",
    "upgrade",
]
