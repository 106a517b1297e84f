"""A disabled user's or revoked client's token stops working before it expires."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from hub.api import accounts


@pytest.fixture(autouse=True)
def quick_hashing():
    previous = accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    accounts.use_hasher(previous)


def test_a_revoked_client_is_refused_within_the_cache_time(app, client, routed_hub):
    with routed_hub.engine.begin() as conn:
        client_id, secret = accounts.add_client(
            conn, "Disdukcapil Bandung", ["records:read"], "32.73", actor="test"
        )
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with routed_hub.engine.begin() as conn:
        assert accounts.revoke_client(conn, client_id, actor="test")
    app.state.active_accounts.clear()  # what ACTIVE_TTL seconds do
    refused = client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"


def test_a_disabled_user_is_refused(app, client, routed_hub):
    with routed_hub.engine.begin() as conn:
        accounts.add_user(
            conn, "siti.op", "kata-sandi-panjang-1", "operator", "32.73.01.1001", actor="test"
        )
    login = client.post(
        "/api/v1/login", json={"username": "siti.op", "password": "kata-sandi-panjang-1"}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with routed_hub.engine.begin() as conn:
        assert accounts.disable_user(conn, "siti.op", actor="test")
    app.state.active_accounts.clear()
    assert client.get("/api/v1/me", headers=headers).status_code == 401
