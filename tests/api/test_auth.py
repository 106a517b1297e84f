"""Getting and checking tokens: client credentials, operator login with lock-out, JWKS and
rotation, and the JWT attacks that must all be refused with 401 `invalid_token`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from joserfc import jwt
from joserfc.jwk import ECKey

from hub.api import accounts
from hub.api.principal import Principal
from hub.api.tokens import AUDIENCE, ISSUER, TokenService
from hub.store.tables import audit_events, users

PASSWORD = "kata-sandi-yang-panjang"
GENERIC = "the username or password is not correct"


# ------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True)
def quick_hashing():
    """argon2id at production cost takes ~0.12 s a hash and these tests make ~150: use the
    documented test hook with low cost parameters (same algorithm, same code paths)."""
    previous = accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    accounts.use_hasher(previous)


def add_user(hub, name="budi.s", role="operator", wilayah="32.73.01.1001", password=PASSWORD):
    with hub.engine.begin() as conn:
        accounts.add_user(conn, name, password, role, wilayah, actor="test")


def add_client(hub, scopes=("records:read", "records:write"), wilayah="32.73"):
    with hub.engine.begin() as conn:
        return accounts.add_client(conn, "SIAK Kota", scopes, wilayah, actor="test")


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def actions(hub, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events.c.action, audit_events.c.details)
            .where(audit_events.c.action.startswith(prefix))
            .order_by(audit_events.c.id)
        ).all()
    return [(a, json.loads(d)) for a, d in rows]


def login(client, username="budi.s", password=PASSWORD):
    return client.post("/api/v1/login", json={"username": username, "password": password})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user:mallory",
        "role": "admin",
        "wilayah": "",
        "scope": "audit:read pii:read",
        "iat": now,
        "exp": now + 600,
        "jti": "x",
    }
    return {**base, **changes}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def kid_of(token: str) -> str:
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return str(header["kid"])


# ------------------------------------------------------------------ POST /oauth/token


def test_client_credentials_with_basic_auth(client, routed_hub):
    client_id, secret = add_client(routed_hub)
    answer = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "records:read records:write"
    assert answer.headers["cache-control"] == "no-store"
    me = client.get("/api/v1/me", headers=bearer(body["access_token"])).json()
    assert me == {
        "subject": f"client:{client_id}",
        "role": "system",
        "wilayah": "32.73",
        "wilayah_nama": "Kota Bandung",
        "scopes": ["records:read", "records:write"],
    }


def test_client_credentials_with_form_auth_and_scope_narrowing(client, routed_hub):
    client_id, secret = add_client(routed_hub)
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": "records:read",
    }
    answer = client.post("/oauth/token", data=form)
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "records:read"
    me = client.get("/api/v1/me", headers=bearer(answer.json()["access_token"])).json()
    assert me["scopes"] == ["records:read"]


def test_basic_credentials_are_form_urlencoded(client, routed_hub):
    client_id, secret = add_client(routed_hub)
    raw = base64.b64encode(f"{client_id}:{secret.replace('-', '%2D')}".encode()).decode()
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    "case", ["wrong secret", "unknown client", "revoked", "none", "overlong secret"]
)
def test_client_refused_with_invalid_client(client, routed_hub, case):
    client_id, secret = add_client(routed_hub)
    headers = basic(client_id, secret)
    if case == "wrong secret":
        headers = basic(client_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    elif case == "unknown client":
        headers = basic("hub-000000000000000000000000", secret)
    elif case == "revoked":
        with routed_hub.engine.begin() as conn:
            assert accounts.revoke_client(conn, client_id, actor="test")
    elif case == "overlong secret":
        headers = basic(client_id, secret * 10)
    else:
        headers = {}
    answer = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert answer.headers["cache-control"] == "no-store"
    if case in ("wrong secret", "revoked"):
        reason = "bad_secret" if case == "wrong secret" else "revoked"
        assert actions(routed_hub, "client.auth_failed") == [
            ("client.auth_failed", {"reason": reason})
        ]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "username": "x", "password": "y"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
        ({"grant_type": "client_credentials", "scope": "records:approve"}, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": "records:read bogus"}, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": 'records:read "x"'}, "invalid_scope"),
    ],
)
def test_token_request_errors_in_rfc6749_shape(client, routed_hub, form, error):
    client_id, secret = add_client(routed_hub)
    answer = client.post("/oauth/token", data=form, headers=basic(client_id, secret))
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert set(answer.json()) == {"error", "error_description"}


def test_token_request_must_be_one_form_with_one_auth_method(client, routed_hub):
    client_id, secret = add_client(routed_hub)
    both = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    answer = client.post("/oauth/token", data=both, headers=basic(client_id, secret))
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    repeated = "grant_type=client_credentials&grant_type=client_credentials"
    answer = client.post(
        "/oauth/token",
        content=repeated,
        headers={**basic(client_id, secret), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    answer = client.post(
        "/oauth/token", json={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!!not-base64"},
    )
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


# ------------------------------------------------------------------ POST /api/v1/login


def test_login_answers_a_token_for_the_person(client, routed_hub):
    add_user(routed_hub)
    answer = login(client)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert (body["role"], body["wilayah"], body["expires_in"]) == ("operator", "32.73.01.1001", 900)
    me = client.get("/api/v1/me", headers=bearer(body["access_token"])).json()
    assert me["subject"] == "user:budi.s"
    assert me["wilayah_nama"] == "Sukarasa"
    assert "records:write" in me["scopes"]
    assert "records:approve" not in me["scopes"]
    form = client.post("/api/v1/login", data={"username": "budi.s", "password": PASSWORD})
    assert form.status_code == 200
    assert [a for a, _ in actions(routed_hub, "user.login")] == ["user.login", "user.login"]


def test_wrong_password_unknown_and_disabled_user_get_one_message(client, routed_hub):
    add_user(routed_hub)
    add_user(routed_hub, "sari.w", password="another-long-password")
    with routed_hub.engine.begin() as conn:
        assert accounts.disable_user(conn, "sari.w", actor="test")
    answers = [
        login(client, password="wrong-but-long-enough"),
        login(client, username="nobody"),
        login(client, username="sari.w", password="another-long-password"),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json()["error"] == {
            "code": "invalid_credentials",
            "message": GENERIC,
            "details": None,
        }
    failed = actions(routed_hub, "user.login_failed")
    assert [d["reason"] for _, d in failed] == ["bad_password", "unknown_user", "disabled"]
    assert all(PASSWORD not in json.dumps(d) for _, d in failed)


def test_five_failures_lock_for_fifteen_minutes_then_unlock(client, app, routed_hub):
    add_user(routed_hub)
    start = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    app.state.clock = lambda: start
    for _ in range(4):
        assert login(client, password="wrong-password-1").status_code == 401
    fifth = login(client, password="wrong-password-1")
    assert fifth.status_code == 429
    assert fifth.headers["retry-after"] == "900"
    assert fifth.json()["error"]["code"] == "account_locked"
    app.state.clock = lambda: start + dt.timedelta(minutes=10)
    locked = login(client)  # the right password does not help while locked
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "300"
    assert [a for a, _ in actions(routed_hub, "user.lock")] == ["user.locked"]
    app.state.clock = lambda: start + dt.timedelta(minutes=15, seconds=1)
    assert login(client).status_code == 200
    with routed_hub.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == "budi.s")).one()
    assert (row.failed_logins, row.locked_until) == (0, None)


def test_a_success_resets_the_failure_count(client, app, routed_hub):
    add_user(routed_hub)
    for _ in range(4):
        assert login(client, password="wrong-password-1").status_code == 401
    assert login(client).status_code == 200
    for _ in range(4):
        assert login(client, password="wrong-password-1").status_code == 401
    assert login(client).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"username=x", "headers": {"Content-Type": "text/plain"}}, 415),
        ({"json": {"username": "budi.s"}}, 422),
        ({"json": ["budi.s", PASSWORD]}, 422),
        ({"json": {"username": "budi.s", "password": "x" * 1025}}, 422),
        ({"json": {"username": "b" * 101, "password": PASSWORD}}, 422),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
    ],
)
def test_login_body_problems(client, kwargs, status):
    answer = client.post("/api/v1/login", **kwargs)
    assert answer.status_code == status
    assert set(answer.json()["error"]) == {"code", "message", "details"}


def test_login_rehashes_a_password_made_with_older_parameters(client, routed_hub):
    add_user(routed_hub)
    accounts.use_hasher(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert login(client).status_code == 200
    with routed_hub.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert actions(routed_hub, "user.login")[-1][1] == {"role": "operator", "rehashed": True}
    assert login(client).status_code == 200


def test_me_without_a_token(client):
    answer = client.get("/api/v1/me")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


# ------------------------------------------------------------------ JWKS and rotation


def test_jwks_publishes_public_keys_only(client, app):
    answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    (key,) = answer.json()["keys"]
    assert {key["kty"], key["crv"], key["alg"], key["use"]} == {"EC", "P-256", "ES256", "sig"}
    assert "d" not in key
    assert answer.headers["cache-control"] == "public, max-age=300"
    token = app.state.tokens.issue(Principal.for_role("user:a", "auditor", ""))
    assert kid_of(token) == key["kid"]


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(client, app, auth, routed_hub):
    old_headers = auth("verifikator", "32.73.01")
    old_kid = kid_of(old_headers["Authorization"].split()[1])
    new_kid = app.state.tokens.rotate(actor="test")
    assert new_kid != old_kid
    assert client.get("/api/v1/me", headers=old_headers).status_code == 200
    new_token = auth("verifikator", "32.73.01")["Authorization"].split()[1]
    assert kid_of(new_token) == new_kid
    assert client.get("/api/v1/me", headers=bearer(new_token)).status_code == 200
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert kids == {old_kid, new_kid}
    assert actions(routed_hub, "keys.rotated") == [("keys.rotated", {"retired": [old_kid]})]


def test_a_rotation_by_another_process_is_picked_up(client, app, routed_hub):
    first = app.state.tokens.issue(Principal.for_role("user:a", "auditor", ""))
    other = TokenService(routed_hub.engine, routed_hub.protector)
    new_kid = other.rotate()
    token = other.issue(Principal.for_role("user:a", "auditor", ""))
    assert kid_of(token) == new_kid
    for each in (first, token):
        assert client.get("/api/v1/me", headers=bearer(each)).status_code == 200


# ------------------------------------------------------------------ JWT attacks


def _attack(name: str, app, routed_hub) -> str:
    tokens: TokenService = app.state.tokens
    good = tokens.issue(Principal.for_role("user:budi.s", "operator", "32.73.01.1001"))
    kid = kid_of(good)
    if name == "alg none":
        header = b64(json.dumps({"alg": "none", "kid": kid, "typ": "JWT"}).encode())
        return f"{header}.{b64(json.dumps(claims()).encode())}."
    if name == "expired":
        return tokens.issue(
            Principal.for_role("user:budi.s", "operator", "32.73.01.1001"), ttl=-120
        )
    if name == "wrong audience":
        return TokenService(routed_hub.engine, routed_hub.protector, audience="siak").issue(
            Principal.for_role("user:budi.s", "operator", "32.73.01.1001")
        )
    if name == "wrong issuer":
        return TokenService(routed_hub.engine, routed_hub.protector, issuer="evil").issue(
            Principal.for_role("user:budi.s", "operator", "32.73.01.1001")
        )
    if name in ("another EC key", "unknown kid"):
        key = ECKey.generate_key("P-256", private=True)
        use_kid = kid if name == "another EC key" else "f" * 32
        return jwt.encode({"alg": "ES256", "kid": use_kid}, claims(), key, algorithms=["ES256"])
    if name == "tampered payload":
        header, payload, signature = good.split(".")
        body = json.loads(base64.urlsafe_b64decode(payload + "=="))
        body.update(role="admin", wilayah="")
        return f"{header}.{b64(json.dumps(body).encode())}.{signature}"
    if name == "HS256 with the public key":
        (jwk,) = [k for k in tokens.jwks()["keys"] if k["kid"] == kid]
        secret = ECKey.import_key(jwk).as_pem(private=False)
        header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
        signing_input = f"{header}.{b64(json.dumps(claims()).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"
    if name == "no kid":
        key = ECKey.generate_key("P-256", private=True)
        return jwt.encode({"alg": "ES256"}, claims(), key, algorithms=["ES256"])
    if name == "garbage":
        return "not.a.token"
    raise AssertionError(name)


@pytest.mark.parametrize(
    "attack",
    [
        "alg none",
        "expired",
        "wrong audience",
        "wrong issuer",
        "another EC key",
        "tampered payload",
        "HS256 with the public key",
        "unknown kid",
        "no kid",
        "garbage",
    ],
)
def test_jwt_attacks_are_refused(client, app, routed_hub, attack):
    token = _attack(attack, app, routed_hub)
    answer = client.get("/api/v1/me", headers=bearer(token))
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "invalid_token"
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
