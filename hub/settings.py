"""Process settings, read once from the environment (and optionally a `.env` file).

| variable            | default                       | meaning                                  |
|---------------------|-------------------------------|------------------------------------------|
| `HUB_DATA_DIR`      | `./var`                       | holds the embedded database and key file |
| `HUB_DATABASE_URL`  | `sqlite:///<data_dir>/hub.db` | SQLite (embedded) or PostgreSQL          |
| `HUB_DATA_KEY`      | unset                         | base64 of the 32-byte master key for PII |
| `HUB_DATA_KEY_FILE` | `<data_dir>/hub.key`          | key file read (or generated) otherwise   |
| `HUB_ROUTES`        | `./routes.yaml` if it exists  | connectors and routes; none: no delivery |
| `HUB_REDIS_URL`     | unset                         | shared rate limits and quotas (scaled out)|

```python
settings = Settings.from_env()
engine = create_engine_from_settings(settings)
```

An empty variable counts as unset. Invalid values raise `ConfigError` naming the variable,
never echoing a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError
from starlette.config import Config
from starlette.datastructures import Secret

from hub.crypto import decode_data_key
from hub.errors import ConfigError

#: The drivers the hub is built and tested with, per backend.
_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings of one hub process. Build with `Settings.from_env()`; tests build it directly."""

    database_url: str
    data_dir: Path
    data_key: Secret | None
    data_key_file: Path
    routes_path: Path | None = None
    redis_url: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = None
    ) -> Settings:
        """Read the settings from `environ` (default `os.environ`), then `env_file` if given."""
        config = Config(env_file, environ=os.environ if environ is None else environ)

        def get(key: str) -> str | None:
            value = config.get(key, default=None)
            return (value.strip() or None) if value is not None else None

        data_dir = _path("HUB_DATA_DIR", get("HUB_DATA_DIR") or "./var")
        raw_url = get("HUB_DATABASE_URL")
        database_url = (
            normalise_database_url(raw_url, "HUB_DATABASE_URL")
            if raw_url
            else f"sqlite:///{data_dir / 'hub.db'}"
        )
        raw_key = get("HUB_DATA_KEY")
        data_key = None
        if raw_key is not None:
            decode_data_key(raw_key, source="HUB_DATA_KEY")  # fail now, not at first use
            data_key = Secret(raw_key)
        key_file = get("HUB_DATA_KEY_FILE")
        data_key_file = _path("HUB_DATA_KEY_FILE", key_file) if key_file else data_dir / "hub.key"
        routes = get("HUB_ROUTES")
        routes_path = _path("HUB_ROUTES", routes) if routes else _existing(Path("routes.yaml"))
        redis_url = get("HUB_REDIS_URL")
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("HUB_REDIS_URL must start with redis://, rediss:// or unix://")
        return cls(database_url, data_dir, data_key, data_key_file, routes_path, redis_url)

    @property
    def embedded(self) -> bool:
        """True for the single-process default (SQLite), false when scaled out."""
        return self.database_url.startswith("sqlite")

    def __repr__(self) -> str:
        url = sa.make_url(self.database_url).render_as_string(hide_password=True)
        return (
            f"Settings(database_url={url!r}, data_dir={str(self.data_dir)!r}, "
            f"data_key={self.data_key!r}, data_key_file={str(self.data_key_file)!r}, "
            f"routes_path={self.routes_path and str(self.routes_path)!r}, "
            f"redis={'set' if self.redis_url else None})"
        )


def normalise_database_url(value: str, variable: str = "database URL") -> str:
    """Check a database URL and name its driver: `postgresql://` becomes `postgresql+psycopg://`."""
    if value.startswith("postgres://"):  # Heroku-style alias
        value = "postgresql://" + value.removeprefix("postgres://")
    try:
        url = sa.make_url(value)
    except ArgumentError as exc:
        raise ConfigError(f"{variable} is not a database URL (e.g. sqlite:///var/hub.db)") from exc
    backend, _, driver = url.drivername.partition("+")
    if backend not in _DRIVERS:
        raise ConfigError(
            f"{variable} names backend {backend!r}; the hub supports sqlite and postgresql"
        )
    if driver and driver != _DRIVERS[backend]:
        raise ConfigError(f"{variable} names driver {driver!r}; use {backend}+{_DRIVERS[backend]}")
    url = url.set(drivername=f"{backend}+{_DRIVERS[backend]}")
    return url.render_as_string(hide_password=False)


def _path(variable: str, value: str) -> Path:
    if "\x00" in value:
        raise ConfigError(f"{variable} is not a valid path")
    return Path(value).expanduser().resolve()


def _existing(path: Path) -> Path | None:
    return path.resolve() if path.is_file() else None
