"""`GET /metrics`: what the pipeline, the API and the database say, with no PII."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from hub.api.app import create_app
from hub.context import Hub
from hub.observe.asgi import route_template
from hub.observe.metrics import render
from hub.pipeline import run_batch, source_for
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_table


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: TestClient, **headers: str) -> str:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def ingest(hub: Hub, tmp_path: Path) -> None:
    rows = [
        kelahiran_row(1),
        kelahiran_row(2),
        kelahiran_row(3, **{"NIK Ibu": "12345"}),
        kelahiran_row(4, **{"Tgl Lahir": "31/02/2025"}),
        kelahiran_row(1),  # the same row again: a duplicate
    ]
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    run_batch(hub, source_for(path), "kelahiran", actor="operator:test")


def test_rows_issues_stages_and_requests_are_counted(
    routed_hub: Hub, tmp_path: Path, client: TestClient, auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_METRICS_TOKEN", raising=False)
    before = samples(scrape(client))
    ingest(routed_hub, tmp_path)
    headers = auth("admin", "")
    assert client.get("/api/v1/batches/1", headers=headers).status_code == 200
    assert client.get("/api/v1/batches/999", headers=headers).status_code == 404
    assert client.get("/api/v1/nik/3273014507900001/verify", headers=headers).status_code in {
        400,
        422,
        503,
        200,
    }
    assert client.get("/no/such/page/3273014507900001").status_code == 404
    text = scrape(client)
    after = samples(text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("hub_rows_total", record_type="kelahiran", outcome="valid") == 2
    assert delta("hub_rows_total", record_type="kelahiran", outcome="invalid") == 2
    assert delta("hub_rows_total", record_type="kelahiran", outcome="duplicate") == 1
    assert delta("hub_batches_total", record_type="kelahiran", status="done") == 1
    codes = {
        dict(labels)["code"]
        for (name, labels), v in after.items()
        if name == "hub_row_issues_total" and v > value(before, name, **dict(labels))
    }
    assert len(codes) >= 2  # the bad NIK and the impossible date, by their own codes
    for stage in ("read", "validate", "store", "route"):
        assert delta("hub_pipeline_stage_seconds_count", stage=stage) >= 1
    route = "/api/v1/batches/{batch_id}"
    assert delta("hub_http_requests_total", route=route, method="GET", status="200") == 1
    assert delta("hub_http_requests_total", route=route, method="GET", status="404") == 1
    assert delta("hub_http_request_duration_seconds_count", route=route, method="GET") == 2
    not_found = [
        dict(labels)["route"]
        for (name, labels), v in after.items()
        if name == "hub_http_requests_total"
        and dict(labels)["status"] == "404"
        and v > value(before, name, **dict(labels))
    ]
    assert len(not_found) == 2  # the unknown batch, and the unknown page under its mount
    # what the database says: the two valid births wait for Dukcapil
    assert value(after, "hub_outbox_messages", connector="dukcapil", status="queued") == 2
    assert value(after, "hub_outbox_oldest_due_age_seconds", connector="dukcapil") >= 0
    assert value(after, "hub_scrape_database_up") == 1
    # labels hold templates, names and codes: never a NIK, a path or a name
    assert "3273014507900001" not in text
    assert '/api/v1/batches/1"' not in text
    assert "aisyah" not in text.lower()


def test_a_metrics_token_is_required_when_set(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_METRICS_TOKEN", "s3cret-scrape-token")
    client = TestClient(create_app(hub))
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "s3cret" not in wrong.text
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert right.status_code == 200


def test_a_database_that_does_not_answer_is_reported_not_fatal(hub: Hub) -> None:
    import sqlalchemy as sa

    from hub.observe.collect import DatabaseCollector

    broken = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    text, _ = render([DatabaseCollector(broken)])
    assert value(samples(text.decode()), "hub_scrape_database_up") == 0


def test_route_template_of_unmatched_and_mounted_routes() -> None:
    class R:
        path_format = "/batches/{batch_id}"

    assert route_template({}) == "unmatched"
    assert route_template({"route": R(), "root_path": "/api/v1"}) == "/api/v1/batches/{batch_id}"


_CHILD = """
import sys
from hub.observe.metrics import ROWS
ROWS.labels("kematian", "valid").inc(int(sys.argv[1]))
"""


def test_several_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", _CHILD, count], env=env, check=True)
    reader = subprocess.run(
        [sys.executable, "-c", "from hub.observe.metrics import render; "
         "import sys; sys.stdout.write(render()[0].decode())"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert (
        value(samples(reader.stdout), "hub_rows_total", record_type="kematian", outcome="valid")
        == 7
    )
