"""Logs: one JSON event per line with the bound ids and the current trace; bad settings
refused with a clear message."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
from click.testing import CliRunner
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.cli import main
from hub.errors import ConfigError
from hub.observe import tracing
from hub.observe.logs import bound, configure_logging, log_format, log_level


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("INFO", fmt="json")
    yield
    configure_logging("WARNING", fmt="console")


def test_one_json_event_per_line_with_bound_ids(
    json_logs: None, capsys: pytest.CaptureFixture[str], spans: InMemorySpanExporter
) -> None:
    log = logging.getLogger("hub.test")
    with bound(batch_id=42), tracing.span("work"):
        log.info("batch %s stored", 42)
        ids = tracing.current_ids()
    log.warning("outside")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    first, second = lines[-2], lines[-1]
    assert first["event"] == "batch 42 stored"
    assert first["batch_id"] == 42
    assert first["level"] == "info"
    assert first["logger"] == "hub.test"
    assert first["timestamp"].endswith("Z")
    assert ids is not None
    assert (first["trace_id"], first["span_id"]) == ids
    assert "batch_id" not in second
    assert "trace_id" not in second


def test_an_exception_stays_on_one_line(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        raise ValueError("kaputt")
    except ValueError:
        logging.getLogger("hub.test").exception("failed")
    line = capsys.readouterr().err.splitlines()[-1]
    assert "ValueError: kaputt" in orjson.loads(line)["exception"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="HUB_LOG_FORMAT"):
        log_format({"HUB_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="HUB_LOG_LEVEL"):
        log_level("INFO", {"HUB_LOG_LEVEL": "LOUD"})
    assert log_level("INFO", {"HUB_LOG_LEVEL": "debug"}) == logging.DEBUG
    assert log_format({"HUB_LOG_FORMAT": "JSON"}) == "json"


@pytest.mark.parametrize(
    ("variable", "value"), [("HUB_LOG_FORMAT", "xml"), ("HUB_LOG_LEVEL", "LOUD")]
)
def test_the_command_line_says_what_is_wrong(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["schemas", "list"])
    assert result.exit_code == 2
    assert result.stderr.startswith("hub: ")
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
