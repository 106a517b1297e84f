"""`/healthz` and `/readyz`: no token, 200 or 503 with what was checked."""

from __future__ import annotations

import dataclasses

import orjson
import sqlalchemy as sa
from starlette.testclient import TestClient

from hub.api.app import create_app
from hub.audit import utc_timestamp
from hub.context import Hub
from hub.store.tables import connector_state


def ready(app) -> tuple[int, dict]:
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/readyz")
    return answer.status_code, answer.json()


def test_liveness_without_a_token(client):
    answer = client.get("/api/v1/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert answer.headers["cache-control"] == "no-store"


def test_ready_with_the_database_routes_and_connectors(client):
    answer = client.get("/api/v1/readyz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["routes"] == {"ok": True, "configured": True}
    assert "redis" not in body["checks"]
    assert body["connectors"] == [
        {"name": "dukcapil", "state": "running", "breaker": None, "paused_until": None},
        {"name": "siak", "state": "running", "breaker": None, "paused_until": None},
    ]


def _connector(hub: Hub, name: str, state: str, breaker: str | None) -> None:
    snapshot = orjson.dumps({"state": breaker, "failures": 5}).decode() if breaker else None
    with hub.engine.begin() as conn:
        conn.execute(
            connector_state.insert().values(
                connector=name,
                state=state,
                reason="Dukcapil answered 401" if state == "stopped" else None,
                breaker=snapshot,
                updated_at=utc_timestamp(),
            )
        )


def test_a_stopped_connector_or_an_open_breaker_degrades_but_stays_ready(routed_hub, client):
    _connector(routed_hub, "dukcapil", "stopped", "closed")
    body = client.get("/api/v1/readyz").json()
    assert body["status"] == "degraded"
    assert body["connectors"][0] == {
        "name": "dukcapil", "state": "stopped", "breaker": "closed", "paused_until": None
    }  # fmt: skip
    assert "reason" not in body["connectors"][0]  # no error text without a token
    with routed_hub.engine.begin() as conn:
        conn.execute(connector_state.update().values(state="running"))
    _connector(routed_hub, "siak", "running", "open")
    answer = client.get("/api/v1/readyz")
    assert (answer.status_code, answer.json()["status"]) == (200, "degraded")
    assert answer.json()["connectors"][1]["breaker"] == "open"


def test_not_ready_without_the_database(routed_hub, tmp_path):
    app = create_app(routed_hub)
    broken = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'hub.db'}")
    app.state.hub = dataclasses.replace(routed_hub, engine=broken)
    status, body = ready(app)
    assert status == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == {"ok": False, "error": "unreachable"}
    assert body["connectors"] == []
    broken.dispose()


def test_redis_is_checked_when_configured(routed_hub, redis_url):
    with_redis = dataclasses.replace(
        routed_hub, settings=dataclasses.replace(routed_hub.settings, redis_url=redis_url)
    )
    status, body = ready(create_app(with_redis))
    assert status == 200
    assert body["checks"]["redis"]["ok"] is True


def test_not_ready_when_redis_is_unreachable(routed_hub):
    settings = dataclasses.replace(routed_hub.settings, redis_url="redis://127.0.0.1:1/0")
    status, body = ready(create_app(dataclasses.replace(routed_hub, settings=settings)))
    assert status == 503
    assert body["checks"]["redis"] == {"ok": False, "error": "unreachable"}
    assert body["checks"]["database"]["ok"] is True


def test_not_ready_when_routes_do_not_load(hub, tmp_path):
    bad = tmp_path / "routes.yaml"
    bad.write_text("version: 1\nconnectors: {}\nroutes: [oops]\n", "utf-8")
    broken = dataclasses.replace(hub, settings=dataclasses.replace(hub.settings, routes_path=bad))
    status, body = ready(create_app(broken))
    assert status == 503
    assert body["checks"]["routes"] == {"ok": False, "error": "ConfigValidationError"}


def test_without_routes_the_hub_is_ready_with_no_connectors(hub):
    status, body = ready(create_app(hub))
    assert (status, body["checks"]["routes"], body["connectors"]) == (
        200, {"ok": True, "configured": False}, []
    )  # fmt: skip
