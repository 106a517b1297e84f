"""`hub serve`'s app: limits from the environment, the dispatcher inside the app's lifespan."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from hub.api.serve import app_from_env, limit_policy
from hub.errors import ConfigError


def test_limits_from_the_environment():
    policy = limit_policy({"HUB_API_RATE": "500", "HUB_API_DAILY_QUOTA": "1000000"})
    assert (policy.rate, policy.burst, policy.daily) == (500.0, 1000, 1_000_000)
    assert limit_policy({}).rate == 20.0


@pytest.mark.parametrize(
    "env", [{"HUB_API_RATE": "fast"}, {"HUB_API_RATE": "-1"}, {"HUB_API_DAILY_QUOTA": "0"}]
)
def test_bad_limits_are_refused(env):
    with pytest.raises(ConfigError):
        limit_policy(env)


def test_the_served_app_starts_and_stops_with_its_dispatcher(settings, routes_file, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUB_DATA_KEY", settings.data_key and str(settings.data_key) or "")
    monkeypatch.setenv("HUB_ROUTES", str(routes_file))
    app = app_from_env()
    with TestClient(app) as client:
        assert client.get("/api/v1/healthz").status_code == 200
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
