"""Fixtures for the delivery side: a hub whose routes are the shipped ones, in a sandbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.context import Hub
from hub.settings import Settings
from tests.routing import write_routes


@pytest.fixture
def routes_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return write_routes(tmp_path / "routes.yaml", monkeypatch)


@pytest.fixture
def routed_hub(settings: Settings, routes_file: Path) -> Iterator[Hub]:
    """The open hub with routes (shipped routes.yaml, sandbox credentials, quick retries)."""
    opened = Hub.open(dataclasses.replace(settings, routes_path=routes_file))
    yield opened
    opened.close()
