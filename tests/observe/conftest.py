"""Tracing for tests: one SDK provider for the session (OpenTelemetry lets a process set its
provider once), switched on for the tests that ask for `spans`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.observe import tracing
from tests.api.conftest import app, auth, client  # noqa: F401 - the API's fixtures, shared

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    tracing.use_provider(_PROVIDER)
    _EXPORTER.clear()
    try:
        yield _EXPORTER
    finally:
        tracing._state["on"] = False
        _EXPORTER.clear()
