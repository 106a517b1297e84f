"""`hub check | worker | approve | outbox | dlq | simulate` as an admin runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.dukcapil import simulator as dukcapil_sim
from adapters.siak import simulator as siak_sim
from hub.cli import main
from tests.builders import KELAHIRAN_HEADER, PINDAH_HEADER, kelahiran_row, pindah_row, write_table
from tests.routing import SANDBOX_ENV, write_routes
from tests.sandbox import FATHER, mother, mover
from tests.test_cli import cli_env, invoke


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return cli_env(tmp_path, monkeypatch, write_routes(tmp_path / "routes.yaml", monkeypatch))


def ingest_births(tmp_path: Path, n: int = 2) -> None:
    rows = [kelahiran_row(i) for i in range(1, n + 1)]
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, rows)
    assert invoke("ingest", path, "--type", "kelahiran").exit_code == 0


def outbox_status() -> dict[str, dict[str, Any]]:
    result = invoke("outbox", "status", "--format", "json")
    assert result.exit_code == 0, result.output
    return {row["connector"]: row for row in json.loads(result.stdout)}


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch):
    people = (mother(1), mother(2), FATHER, mover("3273011505900005", "Agus Salim"))
    dukcapil_options = dukcapil_sim.SimulatorOptions(extra_people=people, latency=(0, 0))
    siak_options = siak_sim.SimulatorOptions(latency=(0, 0))
    with dukcapil_sim.running(dukcapil_options) as dukcapil, siak_sim.running(siak_options) as siak:
        monkeypatch.setenv("HUB_DUKCAPIL_URL", dukcapil)
        monkeypatch.setenv("HUB_SIAK_URL", siak)
        yield siak_options


def test_check_accepts_the_shipped_routes(env):
    result = invoke("check")
    assert result.exit_code == 0
    assert "OK, 2 connectors (dukcapil, siak), 4 routes" in result.stdout


def test_check_lists_every_problem_with_its_path_and_no_secret(env, tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (tmp_path / "routes.yaml")
        .read_text()
        .replace("by: auto", "by: lurah")
        .replace("connector: siak", "connector: siakk"),
        "utf-8",
    )
    monkeypatch.delenv("HUB_SIAK_CLIENT_SECRET")
    result = invoke("check", "--routes", bad)
    assert result.exit_code == 2
    assert "routes[0].steps[1].approve.by" in result.stderr
    assert "siakk" in result.stderr
    assert "HUB_SIAK_CLIENT_SECRET" in result.stderr
    assert SANDBOX_ENV["HUB_DUKCAPIL_PASSWORD"] not in result.stderr


def test_check_of_a_missing_file(env, tmp_path):
    result = invoke("check", "--routes", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "cannot be read" in result.stderr


def test_ingest_queues_verifications_and_the_worker_delivers(env, tmp_path, sandboxes):
    ingest_births(tmp_path)
    assert outbox_status()["dukcapil"]["queued"] == 2
    result = invoke("worker", "--until-idle")
    assert result.exit_code == 0, result.output
    assert "done=4" in result.stdout
    status = outbox_status()
    assert (status["dukcapil"]["delivered"], status["siak"]["delivered"]) == (2, 2)
    assert status["siak"]["state"] == "running"
    text = invoke("outbox", "status")
    assert "dukcapil" in text.stdout
    assert "siak" in text.stdout


def test_worker_without_credentials_says_which_variable(env, tmp_path, monkeypatch):
    ingest_births(tmp_path, 1)
    monkeypatch.delenv("HUB_DUKCAPIL_PASSWORD")
    result = invoke("worker", "--until-idle")
    assert result.exit_code == 2
    assert "HUB_DUKCAPIL_PASSWORD" in result.stderr


def test_approve_and_reject_from_the_command_line(env, tmp_path, sandboxes):
    rows = [pindah_row("3273011505900005")]
    path = write_table(tmp_path / "pindah.csv", PINDAH_HEADER, rows)
    assert invoke("ingest", path, "--type", "pindah").exit_code == 0
    assert invoke("worker", "--until-idle").exit_code == 0

    assert invoke("approve").exit_code == 2
    assert "--reason" in invoke("approve", "1", "--reject").stderr
    result = invoke("approve", "--batch", "1", "--actor", "verifikator:32.73.01")
    assert (result.exit_code, result.stdout.strip()) == (0, "approved: 1")
    again = invoke("approve", "1")
    assert again.exit_code == 1
    assert "record 1 skipped: status is queued" in again.stderr
    assert invoke("worker", "--until-idle").exit_code == 0
    assert outbox_status()["siak"]["delivered"] == 1


def test_dead_letters_list_show_and_replay(env, tmp_path, sandboxes):
    sandboxes.fail_5xx = 1.0  # SIAK answers 503 to everything
    ingest_births(tmp_path, 1)
    assert invoke("worker", "--until-idle").exit_code == 0
    listed = json.loads(invoke("dlq", "list", "--format", "json").stdout)
    assert [(d["connector"], d["code"], d["attempts"]) for d in listed] == [("siak", "503", 4)]
    letter = listed[0]["id"]
    shown = invoke("dlq", "show", letter)
    assert shown.exit_code == 0
    assert shown.stdout.count("outbox.deliver.") == 4
    assert invoke("dlq", "show", 9999).exit_code == 1
    assert invoke("dlq", "replay").exit_code == 2

    sandboxes.fail_5xx = 0.0
    replayed = invoke("dlq", "replay", letter)
    assert (replayed.exit_code, replayed.stdout.strip()) == (0, "replayed: 1")
    assert invoke("worker", "--until-idle").exit_code == 0
    assert "no dead letters" in invoke("dlq", "list").stdout
    assert outbox_status()["siak"]["delivered"] == 1


def test_resume_of_a_running_connector_is_refused(env):
    result = invoke("outbox", "resume", "dukcapil")
    assert result.exit_code == 1
    assert "not stopped" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "dukcapil", "--hours", "6-22"],
        ["simulate", "siak", "--latency", "fast"],
        ["simulate", "siak", "--fail-5xx", "1.5"],
        ["simulate", "ckan"],
    ],
)
def test_simulate_refuses_bad_options(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
