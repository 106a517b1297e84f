"""Routes for tests: the shipped routes.yaml with sandbox credentials and quick retries."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.routes import read_yaml

ROOT = Path(__file__).resolve().parent.parent

SANDBOX_ENV: Mapping[str, str] = {
    "HUB_DUKCAPIL_ID_LEMBAGA": "SANDBOX-LAMPID",
    "HUB_DUKCAPIL_USER": "sandbox",
    "HUB_DUKCAPIL_PASSWORD": "sandbox-secret",
    "HUB_DUKCAPIL_IP": "127.0.0.1",
    "HUB_SIAK_CLIENT_ID": "hub-sandbox",
    "HUB_SIAK_CLIENT_SECRET": "sandbox-secret",
    "HUB_DUKCAPIL_OPEN": "00:00",
    "HUB_DUKCAPIL_CLOSE": "00:00",
}

QUICK_RETRY = {"max_attempts": 4, "initial": 0.01, "maximum": 0.05, "jitter": 0.01}


def shipped_routes() -> dict[str, Any]:
    document: dict[str, Any] = read_yaml((ROOT / "routes.yaml").read_text("utf-8"))
    return document


def write_routes(
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Write the shipped routes (quick retries, no rate limits, open all day) after `change`
    to `path`, and set the sandbox credentials in the environment."""
    for name, value in SANDBOX_ENV.items():
        monkeypatch.setenv(name, value)
    document = copy.deepcopy(shipped_routes())
    for connector in document["connectors"].values():
        connector["retry"] = dict(QUICK_RETRY)
        connector["circuit_breaker"] = {"failure_threshold": 1000, "reset_after": 0.05}
        connector.pop("rate_limit", None)
        connector.pop("daily_quota", None)
        connector.pop("allowed_hours", None)
        connector["timeout"] = 2
    if change is not None:
        change(document)
    # safe_dump quotes what YAML 1.1 would misread ('on', '08'); read_yaml reads it back.
    path.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
    return path
