"""`Hub`: what one process opens once and shares — settings, store, keys, schemas, regions."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub.crypto import DataProtector, resolve_data_key
from hub.keys import attach_key_ring
from hub.messages import Messages
from hub.schemas import SchemaRegistry
from hub.settings import Settings
from hub.store import create_engine_from_settings, upgrade
from hub.wilayah import WilayahIndex, ensure_demo_loaded

if TYPE_CHECKING:
    from hub.routes import RoutesConfig


@dataclass
class Hub:
    """The open hub of one process.

    ```python
    hub = Hub.open()                     # settings from the environment
    hub.schemas.get("kelahiran")
    ```
    Opening migrates the store to the current schema and, when the region table is empty,
    loads the demo region subset so that the embedded default works out of the box.
    """

    settings: Settings
    engine: sa.Engine
    protector: DataProtector
    schemas: SchemaRegistry = field(default_factory=SchemaRegistry.load)
    messages: Messages = field(default_factory=Messages.load)
    key_generated: bool = False

    @classmethod
    def open(cls, settings: Settings | None = None) -> Hub:
        settings = settings or Settings.from_env()
        engine = create_engine_from_settings(settings)
        upgrade(engine)
        with engine.begin() as conn:
            ensure_demo_loaded(conn)
        key = resolve_data_key(settings)
        protector = DataProtector(key.key)
        try:
            attach_key_ring(engine, protector)  # PII key versions (hub/keys.py)
        except BaseException:
            engine.dispose()
            raise
        return cls(settings, engine, protector, key_generated=key.generated)

    @cached_property
    def regions(self) -> WilayahIndex:
        with self.engine.connect() as conn:
            return WilayahIndex.load(conn)

    @cached_property
    def routes(self) -> RoutesConfig | None:
        """The connectors and routes of `routes.yaml`; None when none is configured (records
        then stay `valid`). An invalid file raises `ConfigValidationError` listing every
        problem; unset credentials only stop the connectors that need them."""
        path = self.settings.routes_path
        if path is None:
            return None
        from hub.audit import record_config_digest  # with hub.routes: not for ingest alone
        from hub.routes import load_routes

        config = load_routes(path, schemas=self.schemas, require_credentials=False)
        record_config_digest(self.engine, "routes", path)  # audited when it changed
        return config

    def close(self) -> None:
        self.engine.dispose()
