"""`hub users | clients | keys` as an admin runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner

from hub.api import accounts
from hub.cli_accounts import COMMANDS
from hub.settings import Settings
from hub.store import create_engine_from_settings
from hub.store.tables import api_clients, audit_events, signing_keys, users
from tests.conftest import TEST_KEY

PASSWORD = "kata-sandi-yang-panjang"
cli = click.Group("hub", commands={c.name: c for c in COMMANDS if c.name})


@pytest.fixture(autouse=True)
def quick_hashing():
    """The documented test hook: argon2id with low cost parameters keeps the suite quick."""
    previous = accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    accounts.use_hasher(previous)


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    values = {
        "HUB_DATA_DIR": str(tmp_path / "var"),
        "HUB_DATABASE_URL": database_url,
        "HUB_DATA_KEY": TEST_KEY,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUB_ROUTES", raising=False)
    return Settings.from_env()


@pytest.fixture
def engine(env: Settings):
    engine = create_engine_from_settings(env)
    yield engine
    engine.dispose()


def invoke(*args: Any, input: str | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def add_user(name="budi.s", role="operator", wilayah="32.73.01.1001", password=PASSWORD):
    return invoke(
        "users", "add", name, "--role", role, "--wilayah", wilayah, "--password-stdin",
        "--actor", "cli:admin", input=password + "\n",
    )  # fmt: skip


def audit(engine, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events.c.actor, audit_events.c.entity_id, audit_events.c.details)
            .where(audit_events.c.action == action)
            .order_by(audit_events.c.id)
        ).all()
    return [(a, e, json.loads(d)) for a, e, d in rows]


# ------------------------------------------------------------------ users


def test_users_add_list_disable(env, engine):
    result = add_user()
    assert result.exit_code == 0, result.output
    assert result.stdout == "user budi.s added: operator of 32.73.01.1001\n"
    assert add_user("sari.w", "verifikator", "32.73.01").exit_code == 0
    assert add_user("kota.admin", "admin", "32.73").exit_code == 0
    assert add_user("pusat", "admin", "").exit_code == 0
    assert add_user("audit.1", "auditor", "32").exit_code == 0

    listed = invoke("users", "list", "--format", "json")
    assert listed.exit_code == 0
    rows = {u["username"]: u for u in json.loads(listed.stdout)}
    assert set(rows) == {"budi.s", "sari.w", "kota.admin", "pusat", "audit.1"}
    assert (rows["pusat"]["role"], rows["pusat"]["wilayah"]) == ("admin", "")
    assert "password" not in json.dumps(rows)
    text = invoke("users", "list").stdout
    assert "budi.s\toperator\t32.73.01.1001\tactive" in text
    assert "pusat\tadmin\tnasional\tactive" in text

    disabled = invoke("users", "disable", "budi.s", "--actor", "cli:admin")
    assert (disabled.exit_code, disabled.stdout) == (0, "user budi.s disabled\n")
    again = invoke("users", "disable", "budi.s")
    assert (again.exit_code, again.stdout) == (0, "user budi.s was already disabled\n")
    after = {
        u["username"]: u for u in json.loads(invoke("users", "list", "--format", "json").stdout)
    }
    assert [n for n, u in after.items() if u["disabled"]] == ["budi.s"]

    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in stored)
    assert audit(engine, "user.added")[0] == (
        "cli:admin",
        "budi.s",
        {"role": "operator", "wilayah": "32.73.01.1001"},
    )
    assert [e for _, e, _ in audit(engine, "user.disabled")] == ["budi.s"]


def test_users_add_prompts_for_the_password_twice(env, engine):
    result = invoke(
        "users", "add", "budi.s", "--role", "operator", "--wilayah", "32.73.01.1001",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        assert accounts.authenticate_user(conn, "budi.s", PASSWORD).role == "operator"
    mismatch = invoke(
        "users", "add", "sari.w", "--role", "operator", "--wilayah", "32.73.01.1001",
        input=f"{PASSWORD}\nsomething-else-entirely\n{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert mismatch.exit_code == 0
    assert "do not match" in mismatch.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("budi.s", "operator", "32.73.01"), "an operator needs a desa/kelurahan"),
        (("budi.s", "operator", ""), "an operator needs a desa/kelurahan"),
        (("budi.s", "verifikator", "32.73.01.1001"), "a verifikator needs a kecamatan"),
        (("budi.s", "verifikator", "32.73"), "a verifikator needs a kecamatan"),
        (("budi.s", "admin", "32.73.01"), "an admin needs a kota/kabupaten or wider"),
        (("budi.s", "operator", "32.73.09.1099"), "32.73.09.1099 is not in the region list"),
        (("budi.s", "admin", "99"), "99 is not in the region list"),
        (("budi.s", "operator", "32-73-01"), "is not a Kemendagri code"),
        (("Budi", "operator", "32.73.01.1001"), "a username has 3 to 100 characters"),
        (("bu", "operator", "32.73.01.1001"), "a username has 3 to 100 characters"),
        (("budi s", "operator", "32.73.01.1001"), "a username has 3 to 100 characters"),
    ],
)
def test_users_add_refuses_bad_input(env, engine, args, message):
    result = add_user(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.startswith("hub: ")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 0


def test_users_add_refuses_short_password_unknown_role_and_a_second_same_name(env):
    short = add_user(password="pendek-11ch")
    assert short.exit_code == 2
    assert "at least 12 characters" in short.stderr
    role = invoke("users", "add", "x.y", "--role", "system", "--wilayah", "32", "--password-stdin")
    assert role.exit_code == 2
    assert "'system' is not one of" in role.stderr
    assert add_user().exit_code == 0
    twice = add_user()
    assert (twice.exit_code, twice.stderr) == (2, "hub: user budi.s exists already\n")


def test_users_disable_unknown_user(env):
    result = invoke("users", "disable", "nobody")
    assert (result.exit_code, result.stderr) == (2, "hub: no user nobody\n")


def test_users_list_when_empty(env):
    assert invoke("users", "list").stdout == "no users\n"


# ------------------------------------------------------------------ clients


def test_clients_add_shows_the_secret_once_then_list_and_revoke(env, engine):
    result = invoke(
        "clients", "add", "--name", "SIAK Kota Bandung", "--scope", "records:read",
        "--scope", "records:write", "--wilayah", "32.73", "--actor", "cli:admin",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    client_id, secret = lines["client_id"].strip(), lines["client_secret"].strip()
    assert "NOT shown again" in result.stderr
    assert len(secret) >= 43

    with engine.connect() as conn:
        row = conn.execute(sa.select(api_clients)).one()
        principal = accounts.authenticate_client(conn, client_id, secret)
    assert row.secret_hash.startswith("$argon2id$")
    assert secret not in row.secret_hash
    assert principal.scopes == {"records:read", "records:write"}
    assert (principal.role, principal.wilayah) == ("system", "32.73")

    listed = invoke("clients", "list", "--format", "json")
    (shown,) = json.loads(listed.stdout)
    assert shown["client_id"] == client_id
    assert secret not in listed.stdout
    assert "secret" not in json.dumps(shown)
    assert f"{client_id}\tSIAK Kota Bandung\trecords:read records:write\t32.73\tactive" in (
        invoke("clients", "list").stdout
    )

    revoked = invoke("clients", "revoke", client_id, "--actor", "cli:admin")
    assert (revoked.exit_code, revoked.stdout) == (0, f"client {client_id} revoked\n")
    again = invoke("clients", "revoke", client_id)
    assert again.stdout == f"client {client_id} was already revoked\n"
    assert "revoked 20" in invoke("clients", "list").stdout
    with engine.connect() as conn, pytest.raises(accounts.AuthenticationFailed):
        accounts.authenticate_client(conn, client_id, secret)
    (added,) = audit(engine, "client.added")
    assert added == (
        "cli:admin",
        client_id,
        {
            "name": "SIAK Kota Bandung",
            "scopes": ["records:read", "records:write"],
            "wilayah": "32.73",
        },
    )
    assert secret not in json.dumps(added)
    assert [e for _, e, _ in audit(engine, "client.revoked")] == [client_id]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scope", "records:read", "--scope", "everything"), "unknown scope(s) everything"),
        (("--scope", "records:read", "--wilayah", "32.79"), "32.79 is not in the region list"),
        (("--scope", " "), "a client needs at least one scope"),
        (("--scope", "records:read", "--name", "  "), "a client needs a name"),
    ],
)
def test_clients_add_refuses_bad_input(env, engine, args, message):
    base = {"--name": "SIAK", "--wilayah": "32.73"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    rest = [x for k, v in base.items() if k not in given for x in (k, v)]
    result = invoke("clients", "add", *args, *rest)
    assert result.exit_code == 2
    assert message in result.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_clients)).scalar() == 0


def test_clients_add_needs_a_scope_and_revoke_an_existing_client(env):
    missing = invoke("clients", "add", "--name", "SIAK", "--wilayah", "32.73")
    assert missing.exit_code == 2
    assert "--scope" in missing.stderr
    unknown = invoke("clients", "revoke", "hub-nope")
    assert (unknown.exit_code, unknown.stderr) == (2, "hub: no client hub-nope\n")
    assert invoke("clients", "list").stdout == "no clients\n"


# ------------------------------------------------------------------ keys


def test_keys_rotate(env, engine):
    first = invoke("keys", "rotate", "--actor", "cli:admin")
    assert first.exit_code == 0, first.output
    second = invoke("keys", "rotate")
    kid = second.stdout.split("new kid ")[1].split()[0]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(signing_keys.c.kid, signing_keys.c.retired_at)).all()
    active = [k for k, retired in rows if retired is None]
    assert active == [kid]
    assert len(rows) == 2
    events = audit(engine, "keys.rotated")
    assert [e for _, e, _ in events][-1] == kid
    assert events[0][0] == "cli:admin"
