"""Helpers of the portal tests: uploads through the portal and waiting for them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from hub.context import Hub
from hub.store.tables import audit_events, records
from tests.portal.conftest import csrf_of


def upload(client: TestClient, path: Path, record_type: str = "kelahiran") -> int:
    token = csrf_of(client.get("/unggah").text)
    answer = client.post(
        "/unggah",
        files={"file": (path.name, path.read_bytes())},
        data={"type": record_type},
        headers={"X-CSRF-Token": token},
    )
    assert answer.status_code == 202, answer.text
    batch_id: int = answer.json()["batch_id"]
    wait_done(client, batch_id)
    return batch_id


def wait_done(client: TestClient, batch_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"/hasil/{batch_id}/status").json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not finish")


def waiting(hub: Hub) -> list[int]:
    """Every valid record goes where a verifikator decides (the kelahiran approve step)."""
    with hub.engine.begin() as conn:
        conn.execute(
            records.update()
            .where(records.c.status.in_(["valid", "verifying"]))
            .values(status="pending_approval", route="kelahiran", step=1)
        )
        return [
            int(i) for i in conn.execute(sa.select(records.c.id).order_by(records.c.id)).scalars()
        ]


def statuses(hub: Hub) -> dict[int, str]:
    with hub.engine.connect() as conn:
        return {
            row.id: row.status for row in conn.execute(sa.select(records.c.id, records.c.status))
        }


def denials(hub: Hub) -> list[dict[str, Any]]:
    import orjson

    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events.c.actor, audit_events.c.details).where(
                audit_events.c.action == "access.denied"
            )
        ).all()
    return [{"actor": actor, **orjson.loads(details)} for actor, details in rows]
