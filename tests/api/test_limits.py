"""Per-caller limits: requests per second with a burst, a daily quota, 429 with Retry-After
and RateLimit headers; per person or system; shared through Redis when configured."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import redis
from starlette.testclient import TestClient

from hub.api.app import create_app
from hub.api.limits import CallerLimits, LimitPolicy
from hub.api.principal import Principal
from hub.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token(app, role="admin", wilayah="", subject=None) -> dict[str, str]:
    principal = Principal.for_role(subject or f"user:{role}", role, wilayah)
    return {"Authorization": f"Bearer {app.state.tokens.issue(principal)}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(routed_hub, clock):
    """An app whose callers may make 2 requests at once, 2 a second, 5 a day."""
    limits = CallerLimits(LimitPolicy(rate=2, burst=2, daily=5), clock=clock)
    app = create_app(routed_hub, caller_limits=limits)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client


def test_burst_then_429_with_retry_after_and_ratelimit_headers(limited, clock):
    app, client = limited
    headers = token(app)
    first = client.get("/api/v1/stats", headers=headers)
    second = client.get("/api/v1/schemas", headers=headers)
    third = client.get("/api/v1/deliveries", headers=headers)
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("2", "1")
    assert second.headers["ratelimit-remaining"] == "0"
    assert "retry-after" not in second.headers
    assert third.json()["error"] == {
        "code": "too_many_requests",
        "message": "rate limit reached; try again in 1 s",
        "details": {"limit": "rate", "retry_after": 1},
    }
    assert third.headers["retry-after"] == "1"
    assert third.headers["ratelimit-limit"] == "2"
    assert third.headers["ratelimit-remaining"] == "0"
    assert int(third.headers["ratelimit-reset"]) >= 1
    clock.now += 0.51  # one request's worth of time later
    assert client.get("/api/v1/stats", headers=headers).status_code == 200
    assert client.get("/api/v1/stats", headers=headers).status_code == 429


def test_limits_are_per_person_and_per_system(limited):
    app, client = limited
    for headers in (token(app), token(app, "operator", "32.73.01.1001"),
                    token(app, "system", "", "client:siak-bandung")):  # fmt: skip
        answers = [client.get("/api/v1/schemas", headers=headers).status_code for _ in range(3)]
        assert answers == [200, 200, 429]


def test_refused_and_anonymous_requests(limited):
    app, client = limited
    assert "ratelimit-limit" not in client.get("/api/v1/healthz").headers
    assert client.get("/api/v1/stats").status_code == 401  # no token: nobody to count
    operator = token(app, "operator", "32.73.01.1001")
    refused = client.get("/api/v1/deliveries", headers=operator)
    assert refused.status_code == 403  # refused before it is counted
    assert "ratelimit-limit" not in refused.headers
    assert [client.get("/api/v1/stats", headers=operator).status_code for _ in range(3)] == [
        200, 200, 429
    ]  # fmt: skip


def test_daily_quota(routed_hub, clock):
    today = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)  # 17:00 WIB: 7 h to the reset
    moment = {"now": today}
    limits = CallerLimits(
        LimitPolicy(rate=100, burst=100, daily=3), clock=clock, now=lambda: moment["now"]
    )
    app = create_app(routed_hub, caller_limits=limits)
    headers = token(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [client.get("/api/v1/schemas", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[1].headers["ratelimit-limit"] == "3"  # the day is closer to its end
        assert answers[1].headers["ratelimit-remaining"] == "1"
        refused = answers[3]
        assert refused.headers["retry-after"] == str(7 * 3600)
        assert refused.headers["ratelimit-reset"] == str(7 * 3600)
        assert refused.json()["error"]["details"] == {"limit": "daily", "retry_after": 7 * 3600}
        moment["now"] = today + timedelta(hours=7)  # midnight WIB: a new quota day
        clock.now += 10
        assert client.get("/api/v1/schemas", headers=headers).status_code == 200


def test_overrides_by_subject(routed_hub, clock):
    limits = CallerLimits(
        LimitPolicy(rate=1, burst=1, daily=100),
        {"client:bulk": LimitPolicy(rate=1, burst=5, daily=100)},
        clock=clock,
    )
    app = create_app(routed_hub, caller_limits=limits)
    with TestClient(app, raise_server_exceptions=False) as client:
        bulk = token(app, "system", "", "client:bulk")
        person = token(app)
        assert [client.get("/api/v1/schemas", headers=bulk).status_code for _ in range(6)] == [
            200, 200, 200, 200, 200, 429
        ]  # fmt: skip
        assert [client.get("/api/v1/schemas", headers=person).status_code for _ in range(2)] == [
            200, 429
        ]  # fmt: skip


def test_defaults_and_switching_off(routed_hub):
    app = create_app(routed_hub)
    assert app.state.caller_limits.policy == LimitPolicy(rate=20, burst=40, daily=100_000)
    with TestClient(app) as client:
        answer = client.get("/api/v1/schemas", headers=token(app))
        assert (answer.headers["ratelimit-limit"], answer.headers["ratelimit-remaining"]) == (
            "40", "39"
        )  # fmt: skip
    off = create_app(routed_hub, limits=None)
    assert not hasattr(off.state, "caller_limits")
    with TestClient(off) as client:
        assert "ratelimit-limit" not in client.get("/api/v1/schemas", headers=token(off)).headers


@pytest.mark.parametrize(
    "policy",
    [{"rate": 0}, {"burst": 0}, {"daily": 0}, {"timezone": "Mars/Olympus"}, {"rate": float("nan")}],
)
def test_bad_policies(policy):
    with pytest.raises(ConfigError):
        LimitPolicy(**policy)


def test_shared_through_redis(routed_hub, redis_url, redis_prefix):
    """Two processes (two apps) with one Redis share one caller's limits."""
    policy = LimitPolicy(rate=2, burst=3, daily=1000)
    apps = [
        create_app(routed_hub, caller_limits=CallerLimits(policy, redis_url=redis_url,
                                                          prefix=redis_prefix))
        for _ in range(2)
    ]  # fmt: skip
    headers = token(apps[0])
    try:
        with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
            statuses = [
                client.get("/api/v1/schemas", headers=headers).status_code
                for client in (one, two, one, two)
            ]
            assert statuses == [200, 200, 200, 429]
            refused = two.get("/api/v1/schemas", headers=headers)
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["ratelimit-limit"] == "3"
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{redis_prefix}*"))
        assert any(b"rate:user:admin" in key for key in keys)
        if keys:
            client.delete(*keys)
        client.close()


def test_redis_settings_and_an_unreachable_redis(routed_hub, caplog):
    settings = dataclasses.replace(routed_hub.settings, redis_url="redis://127.0.0.1:1/0")
    app = create_app(dataclasses.replace(routed_hub, settings=settings))
    assert app.state.caller_limits.redis_url == "redis://127.0.0.1:1/0"
    with TestClient(app) as client:
        answer = client.get("/api/v1/schemas", headers=token(app))
    assert answer.status_code == 200  # counted in the process instead
    assert answer.headers["ratelimit-remaining"] == "39"
    assert "counting locally" in caplog.text
