"""Shared fixtures: one store per test, on SQLite and on PostgreSQL.

`database_url` is parametrised over a fresh SQLite file and a fresh PostgreSQL schema
(marker `service`), so every test that uses it, `settings`, `engine` or `hub` runs on both.
PostgreSQL isolation is a uniquely named schema per test, selected with `search_path`, which
works with `pytest -n 2`. PostgreSQL comes from HUB_TEST_DATABASE_URL (default: the local
server); when it cannot be reached the PostgreSQL cases are skipped, except under CI=true,
where they fail.
"""

from __future__ import annotations

import base64
import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa
from starlette.datastructures import Secret

from hub.settings import Settings
from hub.store import create_engine_from_settings, upgrade

if TYPE_CHECKING:
    from hub.context import Hub

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get(
    "HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_KEY = base64.b64encode(bytes(range(32))).decode()


#: For tests that start many processes: they run one after another on one xdist worker
#: (`--dist loadgroup` in the Makefile); together they starve the simulators' clocks.
MANY_PROCESSES = pytest.mark.xdist_group("processes")
#: Requests that a stall of the SIAK simulator's thread may bunch into one stamped second on
#: a loaded CI machine (see test_delivery_proof's rate test).
ARRIVAL_SLACK = 1


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: services are required)")
    pytest.skip(reason)


def _libpq_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(_libpq_url(PG_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {sa.make_url(PG_URL).host} unreachable: {exc}".strip()
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'store' / 'hub.db'}"
        return
    problem = _postgres_problem()
    if problem:
        _unavailable(problem)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = _libpq_url(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own database, data dir and a fixed data key."""
    data_dir = tmp_path / "var"
    return Settings(database_url, data_dir, Secret(TEST_KEY), data_dir / "hub.key")


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    """An engine on a store migrated to head."""
    engine = create_engine_from_settings(settings)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def hub(settings: Settings) -> Iterator[Hub]:
    """The open hub (migrated store, demo regions, data key) on each database."""
    from hub.context import Hub

    opened = Hub.open(settings)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def wilayah_csv() -> Path:
    """The full Kemendagri list shipped next to the repository (not inside it)."""
    path = (REPO / ".." / "shared" / "data" / "wilayah" / "wilayah.csv").resolve()
    if not path.is_file():
        _unavailable(f"{path} is missing")
    return path


REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@functools.cache
def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} unreachable: {exc}"
    return None


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis (database 15 by default). Keys are the test's to namespace with
    `redis_prefix`; under CI=true an unreachable Redis fails the test."""
    problem = _redis_problem()
    if problem:
        _unavailable(problem)
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own, so parallel tests never share Redis keys."""
    return f"hubtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def routes_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped routes.yaml with sandbox credentials and quick retries (tests/routing.py)."""
    from tests.routing import write_routes

    return write_routes(tmp_path / "routes.yaml", monkeypatch)


@pytest.fixture
def routed_hub(settings: Settings, routes_file: Path) -> Iterator[Hub]:
    """The open hub with routes, on each database."""
    import dataclasses

    from hub.context import Hub

    opened = Hub.open(dataclasses.replace(settings, routes_path=routes_file))
    yield opened
    opened.close()
