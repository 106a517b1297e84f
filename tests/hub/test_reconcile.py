"""Reconciliation: delivered per region and type against the SIAK sandbox's counts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
import sqlalchemy as sa

from adapters.siak.client import SiakDeliverer
from hub.context import Hub
from hub.errors import FatalDeliveryError, RetriableDeliveryError
from hub.reconcile import Difference, compare, reconcile, run_job
from hub.store.tables import audit_events
from tests.builders import KELAHIRAN_HEADER, kelahiran_row
from tests.hub.test_dispatcher import dispatch, ingest
from tests.sandbox import FATHER, Sandbox, mother

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def counting(sandbox: Sandbox) -> dict[str, Any]:
    config = sandbox.routes.connectors["siak"].as_adapter_config()
    return {"siak": SiakDeliverer(config, transport=sandbox.siak_wire)}


def test_what_was_delivered_matches_what_siak_confirms(routed_hub: Hub, tmp_path: Path):
    ingest(
        routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(i) for i in (1, 2, 3)], "kelahiran"
    )
    sandbox = Sandbox(routed_hub.routes, people=[mother(1), mother(2), mother(3), FATHER])
    dispatch(routed_hub, sandbox)
    [report] = reconcile(routed_hub, connectors=counting(sandbox))
    assert (report.connector, report.delivered, report.confirmed) == ("siak", 3, 3)
    assert report.differences == []
    # SIAK loses what it had (a restore from an old backup): every cell differs.
    sandbox.siak_app.state.simulator.reset()
    [lost] = reconcile(routed_hub, connectors=counting(sandbox))
    assert lost.differences == [Difference("kelahiran", "32.73.01.1001", 3, 0)]
    assert lost.differences[0].missing_in_siak == 3


def test_the_nightly_job_fails_and_audits_when_counts_differ(
    routed_hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ingest(routed_hub, tmp_path, KELAHIRAN_HEADER, [kelahiran_row(1)], "kelahiran")
    sandbox = Sandbox(routed_hub.routes, people=[mother(1), FATHER])
    dispatch(routed_hub, sandbox)
    sandbox.siak_app.state.simulator.reset()
    monkeypatch.setattr("hub.connectors.build_connector", lambda config: counting(sandbox)["siak"])
    result = run_job(routed_hub)
    assert result.failed
    assert result.detail["reports"][0]["differences"][0]["missing_in_siak"] == 1
    with routed_hub.engine.connect() as conn:
        details = conn.execute(
            sa.select(audit_events.c.details).where(audit_events.c.action == "reconcile.checked")
        ).scalar_one()
    assert orjson.loads(details)["connectors"][0]["differences"] == 1


def test_compare_reports_cells_on_either_side():
    report = compare(
        "siak",
        {("kematian", "32.73.01.1001"): 4, ("pindah", "32.73.01.1002"): 1},
        {("kematian", "32.73.01.1001"): 4, ("datang", "32.73.02.1001"): 2},
    )
    assert report.cells == 3
    assert [d.as_dict()["missing_in_siak"] for d in report.differences] == [-2, 1]


def _client(handler: Any) -> SiakDeliverer:
    config = {
        "base_url": "https://siak.test",
        "credentials": {"client_id": "hub", "client_secret": "s3cret-value"},
    }
    return SiakDeliverer(config, transport=httpx2.MockTransport(handler))


def _answer(counts: httpx2.Response) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth/token":
            return httpx2.Response(
                200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600}
            )
        return counts

    return handler


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx2.Response(503, json={"error": "unavailable"}), RetriableDeliveryError),
        (httpx2.Response(200, json={"counts": [{"event": "NIKAH", "kode_wilayah": "x", "count": 1}]}), FatalDeliveryError),
        (httpx2.Response(200, json={"counts": [{"event": "CAPIL_MATI", "count": "1"}]}), FatalDeliveryError),
        (httpx2.Response(200, text="<html>"), FatalDeliveryError),
        (httpx2.Response(403, json={}), FatalDeliveryError),
    ],
)  # fmt: skip
def test_bad_counts_answers_are_errors(response, error):
    async def main() -> None:
        client = _client(_answer(response))
        try:
            await client.confirmed_counts()
        finally:
            await client.aclose()

    with pytest.raises(error):
        asyncio.run(main())


def test_counts_need_a_token():
    from starlette.testclient import TestClient

    from adapters.siak.simulator import create_app

    with TestClient(create_app()) as client:
        assert client.get("/siak/v1/counts").status_code == 401
        assert (
            client.get("/siak/v1/counts", headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
