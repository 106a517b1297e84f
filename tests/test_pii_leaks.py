"""PII-rich records through every path (ingest with errors, verification and delivery through
the sandboxes, API errors, the CLI), with every log captured at DEBUG: no NIK, No. KK or name
appears in clear anywhere but where a caller with `pii:read` asked for it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from hub.api.app import create_app
from hub.api.principal import Principal
from hub.cli import main as cli
from hub.context import Hub
from hub.dispatcher import Dispatcher
from hub.pipeline import run_batch, source_for
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_table
from tests.sandbox import FATHER, Sandbox, mother

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

NAMES = (
    "Siti Aminah",
    "SITI AMINAH",
    "Budi Santoso",
    "BUDI SANTOSO",
    "Aisyah Putri",
    "Dewi Lestari",
)
KK = "3273011203150004"


def secrets(rows) -> set[str]:
    found = set(NAMES) | {KK, FATHER.nik}
    for row in rows:
        found.add(str(row[KELAHIRAN_HEADER.index("NIK Ibu")]))
    return found


def leaks(text: str, clear: set[str]) -> list[str]:
    return sorted(s for s in clear if s in text)


def test_no_pii_in_logs_errors_or_cli_output(
    routed_hub: Hub, tmp_path: Path, caplog, capfd, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    rows = [kelahiran_row(i) for i in range(1, 5)]
    rows.append(kelahiran_row(5, **{"Nama Ibu": "Dewi Lestari", "Tgl Lahir": "31/02/2025"}))
    rows.append(kelahiran_row(6, **{"NIK Ayah": "32730101018800"}))  # a bad NIK: an error row
    rows.append(kelahiran_row(7))  # her mother is unknown to Dukcapil: verify_failed
    clear = secrets(rows)
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    run_batch(routed_hub, source_for(path), "kelahiran", actor="operator:test")

    async def deliver() -> None:
        sandbox = Sandbox(routed_hub.routes, people=[mother(i) for i in range(1, 6)] + [FATHER])
        connectors = sandbox.connectors()
        dispatcher = Dispatcher(
            routed_hub, routed_hub.routes, connectors=connectors, poll_interval=0.05
        )
        try:
            await asyncio.wait_for(dispatcher.run(until_idle=True), timeout=60)
        finally:
            for connector in connectors.values():
                await connector.aclose()

    asyncio.run(deliver())

    app = create_app(routed_hub)
    bodies: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as client:

        def headers(role, wilayah, scopes=()):
            principal = Principal.for_role(f"user:t-{role}", role, wilayah, frozenset(scopes))
            return {"Authorization": f"Bearer {app.state.tokens.issue(principal)}"}

        auditor = headers("auditor", "32.73")
        for url in (
            "/api/v1/records?limit=50",
            "/api/v1/records/1",
            "/api/v1/records/1/trace",
            "/api/v1/audit",
            "/api/v1/batches/1/issues",
            "/api/v1/deliveries",
            "/api/v1/deadletters",
        ):
            bodies.append(client.get(url, headers=auditor).text)
        # errors: bad values quoting PII, a record of another region, a NIK as a path id
        operator = headers("operator", "32.73.01.1001")
        bad = {"nik_ibu": "3273014507909999x", "nama_ibu": "Dewi Lestari", "no_kk": KK}
        bodies.append(client.post("/api/v1/validate/kelahiran", json=bad, headers=auditor).text)
        bodies.append(client.get(f"/api/v1/records/{FATHER.nik}", headers=auditor).text)
        bodies.append(
            client.get("/api/v1/records/1", headers=headers("operator", "32.73.02.1001")).text
        )
        bodies.append(
            client.post(
                "/api/v1/records/kelahiran", content=b"{bad json " + KK.encode(), headers=operator
            ).text
        )

    monkeypatch.setenv("HUB_DATABASE_URL", routed_hub.settings.database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(routed_hub.settings.data_dir))
    monkeypatch.setenv("HUB_DATA_KEY", str(routed_hub.settings.data_key))
    monkeypatch.setenv("HUB_ROUTES", str(routed_hub.settings.routes_path))
    runner = CliRunner()
    outputs = []
    for args in (
        ["ingest", str(path), "--type", "kelahiran"],
        ["outbox", "status"],
        ["dlq", "list"],
        ["audit", "verify"],
        ["trace", "1"],
        ["trace", "7"],
        ["retention", "run", "--dry-run"],
        ["keys", "status"],
    ):
        result = runner.invoke(cli, args)
        outputs.append(f"$ hub {' '.join(args)}\n{result.output}")

    # The test's own HTTP client logs the URLs it asks for (one holds a NIK on purpose);
    # that is the caller's log, not the hub's.
    logged = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if "http://testserver/" not in r.getMessage()
    )
    captured = capfd.readouterr()
    assert caplog.records, "nothing was logged: the capture is not working"
    assert leaks(logged, clear) == [], logged[:2000]
    assert leaks(captured.out + captured.err, clear) == []
    for body in bodies:
        assert leaks(body, clear) == [], body[:500]
    for output in outputs:
        assert leaks(output, clear) == [], output[:1000]
    # the audit trail as a whole
    import sqlalchemy as sa

    from hub.store.tables import audit_events

    with routed_hub.engine.connect() as conn:
        trail = "\n".join(
            f"{r.actor} {r.entity_id} {r.details}" for r in conn.execute(sa.select(audit_events))
        )
    assert leaks(trail, clear) == []
