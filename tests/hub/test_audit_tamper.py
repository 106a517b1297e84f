"""Tampering with the audit trail by hand, and `hub audit verify` naming each case; signed
checkpoints; the PostgreSQL role that may only append; configuration changes audited."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hub.audit import (
    AuditLog,
    Checkpoint,
    create_checkpoint,
    event_hash,
    record_config_digest,
    verify_chain,
)
from hub.cli import main as cli
from hub.settings import Settings
from hub.store import create_engine_from_settings
from hub.store.tables import audit_events, audit_head
from tests.conftest import PG_URL, TEST_KEY

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "HUB_DATA_DIR": str(tmp_path / "var"),
        "HUB_DATABASE_URL": database_url,
        "HUB_DATA_KEY": TEST_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUB_ROUTES", raising=False)
    return Settings.from_env()


@pytest.fixture
def chain(env: Settings):
    """A store with six audit events (ids 1-6); yields the engine."""
    from hub.context import Hub

    hub = Hub.open(env)
    with hub.engine.begin() as conn:
        for i in range(6):
            AuditLog.record(
                conn,
                actor="operator:32.73.01.1001",
                action="batch.ingested",
                entity_type="batch",
                entity_id=str(i + 1),
                details={"rows": 10 + i},
            )
    yield hub.engine
    hub.close()


def invoke(*args: Any):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def verify_json(*extra: Any) -> tuple[int, dict[str, Any]]:
    result = invoke("audit", "verify", "--format", "json", *extra)
    return result.exit_code, orjson.loads(result.output)


def rows(engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_events).order_by(audit_events.c.id)))


def test_an_intact_chain_verifies(chain):
    code, body = verify_json()
    assert (code, body["ok"], body["checked"], body["kind"]) == (0, True, 6, None)
    assert "audit chain intact: 6 events" in invoke("audit", "verify").output


def test_an_edited_row_is_named(chain):
    with chain.begin() as conn:
        conn.execute(audit_events.update().where(audit_events.c.id == 3).values(actor="mallory"))
    code, body = verify_json()
    assert (code, body["kind"], body["first_bad_id"], body["position"]) == (1, "edited", 3, 3)
    text = invoke("audit", "verify").output
    assert "BROKEN (edited) at position 3: event 3 (position 3) was edited" in text


def test_a_deleted_row_is_named(chain):
    with chain.begin() as conn:
        conn.execute(audit_events.delete().where(audit_events.c.id == 4))
    code, body = verify_json()
    assert (code, body["kind"], body["first_bad_id"], body["position"]) == (1, "deleted", 5, 4)
    assert "missing before event 5" in body["reason"]


def test_an_inserted_row_is_named(chain):
    """A forged event put between 3 and 4 (the later ids moved up to make room for it), with
    a hash that is right for its own content and its link to event 3."""
    original = rows(chain)
    with chain.begin() as conn:
        for event in reversed(original[3:]):
            conn.execute(
                audit_events.update().where(audit_events.c.id == event.id).values(id=event.id + 1)
            )
        conn.execute(audit_head.update().values(last_id=7))
        values = {
            "occurred_at": original[2].occurred_at,
            "actor": "mallory",
            "action": "record.approved",
            "entity_type": "record",
            "entity_id": "9",
        }
        forged = event_hash(original[2].hash, details_json="{}", **values)
        conn.execute(
            audit_events.insert().values(
                id=4, details="{}", prev_hash=original[2].hash, hash=forged, **values
            )
        )
    code, body = verify_json()
    assert (code, body["kind"], body["first_bad_id"], body["position"]) == (1, "inserted", 4, 4)
    assert body["reason"].startswith("event 4 (position 4) was inserted")


def test_a_row_appended_without_the_head_is_named(chain):
    last = rows(chain)[-1]
    values = {
        "occurred_at": last.occurred_at,
        "actor": "mallory",
        "action": "record.approved",
        "entity_type": "record",
        "entity_id": "9",
    }
    with chain.begin() as conn:
        conn.execute(
            audit_events.insert().values(
                details="{}",
                prev_hash=last.hash,
                hash=event_hash(last.hash, details_json="{}", **values),
                **values,
            )
        )
    code, body = verify_json()
    assert (code, body["kind"], body["first_bad_id"]) == (1, "inserted", 7)
    assert "inserted after the head" in body["reason"]


def test_two_swapped_rows_are_named(chain):
    events = rows(chain)
    columns = [c for c in audit_events.c.keys() if c != "id"]
    with chain.begin() as conn:
        for mine, theirs in ((events[1], events[2]), (events[2], events[1])):
            conn.execute(
                audit_events.update()
                .where(audit_events.c.id == mine.id)
                .values({c: getattr(theirs, c) for c in columns})
            )
    code, body = verify_json()
    assert (code, body["kind"], body["first_bad_id"], body["position"]) == (1, "reordered", 2, 2)
    assert "out of order: it belongs after event 3" in body["reason"]


def test_a_cut_tail_is_named(chain):
    with chain.begin() as conn:
        conn.execute(audit_events.delete().where(audit_events.c.id >= 5))
    code, body = verify_json()
    assert (code, body["kind"], body["first_bad_id"]) == (1, "truncated", 6)


def _rewrite_from(engine, first_id: int) -> None:
    """A forger with database access rewrites every event from `first_id` on, recomputing
    every hash and the head, so the chain alone verifies again."""
    events = rows(engine)
    with engine.begin() as conn:
        prev = next(e.hash for e in events if e.id == first_id - 1)
        for event in (e for e in events if e.id >= first_id):
            actor = "mallory" if event.id == first_id else event.actor
            digest = event_hash(
                prev,
                occurred_at=event.occurred_at,
                actor=actor,
                action=event.action,
                entity_type=event.entity_type,
                entity_id=event.entity_id,
                details_json=event.details,
            )
            conn.execute(
                audit_events.update()
                .where(audit_events.c.id == event.id)
                .values(actor=actor, prev_hash=prev, hash=digest)
            )
            prev = digest
        conn.execute(audit_head.update().values(hash=prev))


def test_an_exported_checkpoint_catches_a_rewritten_tail(chain, tmp_path):
    exported = tmp_path / "head.json"
    result = invoke("audit", "export-checkpoint", exported)
    assert result.exit_code == 0, result.output
    checkpoint = orjson.loads(exported.read_bytes())
    assert (checkpoint["last_id"], checkpoint["events"]) == (7, 7)  # 6 + the checkpoint event
    assert verify_json("--checkpoint", exported) == (0, verify_json("--checkpoint", exported)[1])
    assert verify_json("--checkpoint", exported)[1]["checkpoints"] == 2  # stored + exported
    _rewrite_from(chain, 3)
    with chain.begin() as conn:  # the forger also removes the stored checkpoint
        conn.execute(sa.text("DELETE FROM audit_checkpoints"))
    assert verify_json()[0] == 0  # the chain alone cannot tell
    code, body = verify_json("--checkpoint", exported)
    assert (code, body["kind"], body["first_bad_id"]) == (1, "checkpoint", 7)
    assert "differs from the signed checkpoint" in body["reason"]


def test_a_stored_checkpoint_catches_a_rewritten_tail(chain):
    assert invoke("audit", "checkpoint").exit_code == 0
    _rewrite_from(chain, 2)
    code, body = verify_json()
    assert (code, body["kind"]) == (1, "checkpoint")


def test_a_deleted_tail_beyond_a_checkpoint_is_caught(chain, tmp_path):
    exported = tmp_path / "head.json"
    invoke("audit", "export-checkpoint", exported)
    with chain.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_checkpoints"))
        conn.execute(audit_events.delete().where(audit_events.c.id >= 6))
        last = conn.execute(sa.select(audit_events).order_by(audit_events.c.id.desc())).first()
        conn.execute(audit_head.update().values(last_id=last.id, hash=last.hash))
    assert verify_json()[0] == 0
    code, body = verify_json("--checkpoint", exported)
    assert (code, body["kind"]) == (1, "checkpoint")
    assert "events were deleted" in body["reason"]


def test_a_forged_checkpoint_is_refused(chain, tmp_path):
    exported = tmp_path / "head.json"
    invoke("audit", "export-checkpoint", exported)
    data = orjson.loads(exported.read_bytes())
    data["events"] = 99
    exported.write_bytes(orjson.dumps(data))
    code, body = verify_json("--checkpoint", exported)
    assert (code, body["kind"]) == (1, "checkpoint")
    assert "bad signature" in body["reason"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not a json checkpoint"),
        (b'{"format": "other"}', "not an audit checkpoint"),
        (b'{"format": "lampid-hub-audit-checkpoint/1", "last_id": 1}', "incomplete"),
        (
            b'{"format": "lampid-hub-audit-checkpoint/1", "last_id": 1, "hash": "zz", '
            b'"events": 1, "created_at": "x", "key_id": "k", "signature": "00"}',
            "malformed hash",
        ),
    ],
)
def test_bad_checkpoint_files_are_one_line_errors(chain, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = invoke("audit", "verify", "--checkpoint", path)
    assert result.exit_code == 2
    assert message in result.output.lower() or message in (result.stderr or "").lower()


def test_missing_checkpoint_file(chain, tmp_path):
    result = invoke("audit", "verify", "--checkpoint", tmp_path / "nope.json")
    assert result.exit_code == 2
    assert "not found" in result.output


def test_checkpoint_signature_is_the_hubs_own_key(engine):
    from hub.crypto import DataProtector

    ours = DataProtector(bytes(range(32))).audit_signing_key()
    theirs = DataProtector(bytes(32)).audit_signing_key()
    with engine.begin() as conn:
        checkpoint = create_checkpoint(conn, theirs)
    assert checkpoint.signed_by(theirs.public_key())
    assert not checkpoint.signed_by(ours.public_key())
    with engine.connect() as conn:
        result = verify_chain(conn, checkpoints=[checkpoint], public_key=ours.public_key())
    assert (result.ok, result.kind) == (False, "checkpoint")
    again = Checkpoint.from_dict(orjson.loads(orjson.dumps(checkpoint.as_dict())))
    assert again == checkpoint


# ------------------------------------------------------------------ configuration changes


def test_a_changed_routes_file_is_audited_once(engine, tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text("connectors: {}\n")
    assert record_config_digest(engine, "routes", path) is False  # first load: remembered
    assert record_config_digest(engine, "routes", path) is False
    path.write_text("connectors: {}\nroutes: []\n")
    assert record_config_digest(engine, "routes", path) is True
    assert record_config_digest(engine, "routes", path) is False
    with engine.connect() as conn:
        events = conn.execute(
            sa.select(audit_events).where(audit_events.c.action == "config.changed")
        ).all()
    assert len(events) == 1
    details = orjson.loads(events[0].details)
    assert details["file"] == "routes.yaml"
    assert re.fullmatch(r"[0-9a-f]{64}", details["sha256"])
    assert details["previous_sha256"] != details["sha256"]


# ------------------------------------------------------------------ PostgreSQL role


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.service
def test_the_hubs_postgresql_role_can_only_append_audit_rows(database_url, settings):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    from hub.context import Hub

    schema = sa.make_url(database_url).query["options"].removeprefix("-csearch_path=")
    hub = Hub.open(settings)  # migrated, as the owner
    hub.close()
    suffix = uuid.uuid4().hex[:10]
    owner, app = f"lampid_owner_{suffix}", f"lampid_hub_{suffix}"
    script = (REPO / "docs" / "postgresql-roles.sql").read_text()
    script = "\n".join(line for line in script.splitlines() if not line.startswith("\\"))
    script = (
        script.replace(':"schema"', f'"{schema}"')
        .replace("lampid_owner", owner)
        .replace("lampid_hub", app)
    )
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", script).split(";") if s.strip()]
    admin = _libpq(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    app_url = sa.make_url(database_url).set(username=app, password="change-me-hub")
    app_engine = create_engine_from_settings(
        Settings(
            app_url.render_as_string(hide_password=False),
            settings.data_dir,
            settings.data_key,
            settings.data_key_file,
        )
    )
    try:
        with app_engine.begin() as conn:  # appending works, head included
            AuditLog.record(
                conn,
                actor="test",
                action="role.checked",
                entity_type="role",
                entity_id=app,
                details={},
            )
        for statement in (
            audit_events.update().values(actor="mallory"),
            audit_events.delete(),
            sa.text("TRUNCATE audit_events"),
        ):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                with app_engine.begin() as conn:
                    conn.execute(statement)
        with app_engine.connect() as conn:
            assert verify_chain(conn).ok
            assert conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar() == 1
    finally:
        app_engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            for role in (app, owner):
                conn.execute(f'DROP OWNED BY "{role}" CASCADE')
                conn.execute(f'DROP ROLE "{role}"')
