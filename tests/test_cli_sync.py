"""`hub sync`, `hub jobs`, `hub reconcile` end to end on the embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.siak import simulator as siak_sim
from tests.adapters.legacy_db import MAPPING, LegacyDB, birth, open_legacy
from tests.routing import write_routes
from tests.test_cli import cli_env, invoke

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def legacy(tmp_path: Path) -> Iterator[LegacyDB]:
    yield from open_legacy("sqlite", tmp_path)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy: LegacyDB) -> dict[str, str]:
    def add_source(document: dict[str, Any]) -> None:
        document["sources"] = {
            "coblong": {
                "adapter": "sqlserver",
                "connection": "${HUB_SRC_COBLONG}",
                "record_type": "kelahiran",
                "table": legacy.table,
                "key": "NO_REG",
                "columns": MAPPING,
                "incremental": {"strategy": "cursor", "column": "RV"},
                "page_rows": 2,
                "schedule": {"interval": 900},
            }
        }
        document["jobs"] = {"aggregates": {"enabled": False}}

    monkeypatch.setenv("HUB_SRC_COBLONG", legacy.connection)
    routes = write_routes(tmp_path / "routes.yaml", monkeypatch, add_source)
    return cli_env(tmp_path, monkeypatch, routes)


def test_sync_pulls_once_and_jobs_shows_the_run(env, legacy):
    legacy.insert([birth(reg) for reg in range(1, 4)])
    result = invoke("sync", "coblong", "--format", "json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert (report["rows"], report["valid"], report["pages"], report["outcome"]) == (3, 3, 2, "ok")
    text = invoke("sync", "coblong")
    assert text.exit_code == 0
    assert "coblong: 0 halaman, 0 baris" in text.stdout
    listing = orjson.loads(invoke("jobs", "--format", "json").stdout)
    jobs = {item["job"]: item for item in listing}
    assert jobs["sync:coblong"]["outcome"] == "ok"
    assert jobs["sync:coblong"]["rows"] == 0  # the last run found nothing new
    assert jobs["sync:coblong"]["next_run"] is not None
    assert jobs["sync:coblong"]["schedule"] == "every 900 s"
    assert not jobs["aggregates"]["enabled"]
    assert jobs["reconcile"]["enabled"]
    table = invoke("jobs")
    assert "sync:coblong" in table.stdout
    assert "off" in table.stdout
    history = orjson.loads(invoke("jobs", "history", "sync:coblong", "--format", "json").stdout)
    assert [run["rows"] for run in history] == [0, 3]


def test_sync_reports_deletions(env, legacy):
    legacy.insert([birth(1), birth(2)])
    assert invoke("sync", "coblong").exit_code == 0
    legacy.delete(1)
    result = invoke("sync", "coblong")
    assert "1 terhapus di sumber" in result.stdout
    listed = orjson.loads(invoke("sync", "coblong", "--deletions", "--format", "json").stdout)
    assert [(d["key"], d["via"]) for d in listed] == [(1, "missing")]


def test_sync_of_an_unknown_source_or_a_broken_connection(env, legacy, monkeypatch):
    unknown = invoke("sync", "tidak_ada")
    assert unknown.exit_code == 2
    assert "no source named 'tidak_ada' in routes.yaml (known: coblong)" in unknown.stderr
    monkeypatch.setenv("HUB_SRC_COBLONG", "DRIVER={Tidak Ada};PWD=Rahasia-123")
    broken = invoke("sync", "coblong")
    assert broken.exit_code == 2
    assert "tidak dapat dihubungi" in broken.stderr
    assert "Rahasia-123" not in broken.stderr + broken.stdout
    runs = orjson.loads(invoke("jobs", "history", "sync:coblong", "--format", "json").stdout)
    assert runs[0]["outcome"] == "failed"
    assert "Rahasia-123" not in str(runs)


def test_jobs_run_and_an_unknown_job(env):
    ok = invoke("jobs", "run", "aggregates", "--format", "json")
    assert ok.exit_code == 0
    assert orjson.loads(ok.stdout)["outcome"] == "ok"
    unknown = invoke("jobs", "run", "cuci_piring")
    assert unknown.exit_code == 2
    assert "no job named 'cuci_piring'" in unknown.stderr


def test_reconcile_against_the_sandbox(env, monkeypatch):
    with siak_sim.running(siak_sim.SimulatorOptions(latency=(0, 0))) as siak:
        monkeypatch.setenv("HUB_SIAK_URL", siak)
        result = invoke("reconcile", "--format", "json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == [
        {"connector": "siak", "cells": 0, "delivered": 0, "confirmed": 0, "differences": []}
    ]
