"""Traces: a span per request (continuing the caller's traceparent), per pipeline-driven
delivery attempt, and the trace passed on to the national systems."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient

from hub.context import Hub
from hub.dispatcher import Dispatcher
from hub.observe import tracing
from hub.pipeline import run_batch, source_for
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_table
from tests.sandbox import FATHER, Sandbox, mother

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def test_off_by_default_and_on_by_the_standard_variables() -> None:
    assert tracing.wanted({}) is None
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == "otlp"
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) is None
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "zipkin-please"}) is None  # unknown: off


def test_no_spans_and_no_headers_while_off(client: TestClient) -> None:
    assert not tracing.enabled()
    with tracing.span("nothing") as current:
        assert current is None
    headers: dict[str, str] = {}
    tracing.inject(headers)
    assert headers == {}
    assert tracing.current_ids() is None


def test_a_request_span_continues_the_callers_trace(
    client: TestClient, auth: Any, spans: InMemorySpanExporter
) -> None:
    answer = client.get("/api/v1/batches/77", headers=auth("admin", "", traceparent=TRACEPARENT))
    assert answer.status_code == 404
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.name == "GET /api/v1/batches/{batch_id}"
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 404
    assert "77" not in server.name  # the template, not the path


class Headers(httpx2.AsyncBaseTransport):
    """Keeps the headers of every request on their way to a simulator."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[httpx2.Headers] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(request.headers)
        return await self.inner.handle_async_request(request)


def test_delivery_attempts_are_spans_and_carry_traceparent_out(
    routed_hub: Hub, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    path = write_table(tmp_path / "lahir.csv", KELAHIRAN_HEADER, [kelahiran_row(1)])
    run_batch(routed_hub, source_for(path), "kelahiran", actor="operator:test")
    sandbox = Sandbox(routed_hub.routes, people=[mother(1), FATHER])
    sandbox.dukcapil_wire = Headers(sandbox.dukcapil_wire)  # type: ignore[assignment]
    sandbox.siak_wire = Headers(sandbox.siak_wire)  # type: ignore[assignment]

    async def main() -> None:
        connectors = sandbox.connectors()
        dispatcher = Dispatcher(routed_hub, routed_hub.routes, connectors=connectors,
                                poll_interval=0.05)  # fmt: skip
        try:
            await asyncio.wait_for(dispatcher.run(until_idle=True), timeout=60)
        finally:
            for connector in connectors.values():
                await connector.aclose()

    asyncio.run(main())
    finished = spans.get_finished_spans()
    attempts = [s for s in finished if s.name in {"dukcapil verify", "siak deliver"}]
    calls = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert {s.name for s in attempts} == {"dukcapil verify", "siak deliver"}
    assert len(calls) >= 2
    sent = [h for wire in (sandbox.dukcapil_wire, sandbox.siak_wire) for h in wire.seen]  # type: ignore[attr-defined]
    with_trace = [h["traceparent"] for h in sent if "traceparent" in h]
    assert with_trace, "no traceparent went out"
    call_traces = {f"{s.context.trace_id:032x}" for s in calls}
    assert {value.split("-")[1] for value in with_trace} <= call_traces
    for span in finished:  # ids and names only: no NIK in any attribute
        assert "3273014507900001" not in str(dict(span.attributes or {}))


def test_a_forged_traceparent_starts_a_trace_of_our_own(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    forged = ["00-zz-yy-01", f"00-{'0' * 32}-{'0' * 16}-01", "x" * 500, "00-abc\r\nx: y-01"]
    for value in forged:
        assert client.get("/api/v1/healthz", headers={"traceparent": value}).status_code == 200
    servers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(servers) == len(forged)
    for server in servers:
        assert server.parent is None
        assert server.context.trace_id != 0
