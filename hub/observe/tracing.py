"""OpenTelemetry traces: a span per API request, pipeline stage and delivery attempt, with
W3C `traceparent` taken from incoming requests and sent on to the national systems.

Off by default. `setup_tracing()` turns it on from the standard variables:

- `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: export over
  OTLP/HTTP there;
- `OTEL_TRACES_EXPORTER`: `otlp`, `console` (spans on stderr), or `none`;
- `OTEL_SDK_DISABLED=true`: off, whatever else is set;
- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, ...: as the SDK
  reads them.

While off, `span()` costs a flag test and the outgoing hook adds nothing. Span attributes
are names, codes, counts and ids of batches and outbox messages: never personal data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

log = logging.getLogger("hub.observe")

_state: dict[str, bool] = {"on": False}
TRACER_NAME: Final = "lampid-hub"


def enabled() -> bool:
    return _state["on"]


def wanted(environ: Mapping[str, str] | None = None) -> str | None:
    """The exporter the environment asks for (`otlp` or `console`), None for off."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter in {"otlp", "console"}:
        return exporter
    if exporter == "none":
        return None
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return None


def setup_tracing(environ: Mapping[str, str] | None = None) -> bool:
    """Install a tracer provider when the environment asks for one; True when tracing is
    on. Safe to call more than once (the first provider stays)."""
    exporter_name = wanted(environ)
    if exporter_name is None or _state["on"]:
        return _state["on"]
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "lampid-hub")})
    provider = TracerProvider(resource=resource)
    if exporter_name == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _state["on"] = True
    log.info("tracing on, exporter %s", exporter_name)
    return True


def use_provider(provider: Any) -> None:
    """Trace into `provider` (tests: an SDK provider with an in-memory exporter)."""
    trace.set_tracer_provider(provider)
    _state["on"] = True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: context.Context | None = None,
) -> Iterator[Span | None]:
    """A span around the block while tracing is on (None inside when it is off). An
    exception marks the span as an error, with the exception's class only."""
    if not _state["on"]:
        yield None
        return
    with tracer().start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=dict(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def incoming(headers: list[tuple[bytes, bytes]]) -> context.Context | None:
    """The context of a `traceparent` (and `tracestate`) among ASGI request headers."""
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in (b"traceparent", b"tracestate")
    }
    return propagate.extract(carrier) if carrier else None


def inject(headers: MutableMapping[str, str]) -> None:
    """Add `traceparent` (and `tracestate`) of the current span to outgoing headers."""
    if _state["on"]:
        propagate.inject(headers)


async def inject_into_request(request: Any) -> None:
    """httpx2 request hook: the current trace goes with every call to a national system."""
    carrier: dict[str, str] = {}
    inject(carrier)
    for name, value in carrier.items():
        request.headers[name] = value


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span as hex, for log lines; None outside one."""
    if not _state["on"]:
        return None
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return f"{found.trace_id:032x}", f"{found.span_id:016x}"
