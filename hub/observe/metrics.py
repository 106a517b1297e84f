"""Every Prometheus metric the hub exports, in one place.

Counters and histograms are updated where things happen (pipeline, API, dispatcher);
figures that live in the database (outbox depth and age, connector state and quota, job
runs) are read when Prometheus scrapes, by `hub.observe.collect`. Labels carry names,
codes and outcomes only: never a NIK, a name, an address, a record id or a URL with data.

Several processes (granian workers, `hub worker`s on one host) share their figures through
prometheus-client's multiprocess mode: set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
before the processes start (`hub serve` does it for its own workers). `render()` then adds
up every process's files.

```python
ROWS.labels("kelahiran", "valid").inc(180)
with STAGE_SECONDS.labels("validate").time(): ...
body, content_type = render(extra=[DatabaseCollector(hub)])
```
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

#: Latency buckets (seconds) for requests answered in milliseconds up to calls of seconds.
FAST_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SLOW_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

# ------------------------------------------------------------------ ingest

ROWS: Final = Counter(
    "hub_rows",
    "Data rows read from inputs, by record type and outcome (valid, invalid, duplicate).",
    ["record_type", "outcome"],
)
ROW_ISSUES: Final = Counter(
    "hub_row_issues",
    "Issues found in data rows, by record type, issue code and severity.",
    ["record_type", "code", "severity"],
)
BATCHES: Final = Counter(
    "hub_batches",
    "Inputs processed (files, uploads, sync pages), by record type and final status.",
    ["record_type", "status"],
)
STAGE_SECONDS: Final = Histogram(
    "hub_pipeline_stage_seconds",
    "Time spent per pipeline stage and chunk: read (reading and laying out rows), validate, "
    "store (encode, deduplicate, insert), route (putting records on their routes).",
    ["stage"],
    buckets=SLOW_BUCKETS,
)

# ------------------------------------------------------------------ API

HTTP_REQUESTS: Final = Counter(
    "hub_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_SECONDS: Final = Histogram(
    "hub_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=FAST_BUCKETS,
)

# ------------------------------------------------------------------ delivery

CONNECTOR_CALLS: Final = Counter(
    "hub_connector_calls",
    "Calls to national systems, by connector, kind (verify, deliver) and outcome "
    "(ok, retry, dead, stopped, deferred).",
    ["connector", "kind", "outcome"],
)
CONNECTOR_SECONDS: Final = Histogram(
    "hub_connector_call_duration_seconds",
    "Time a national system took to answer a call, by connector.",
    ["connector"],
    buckets=SLOW_BUCKETS,
)
RATE_LIMIT_WAIT: Final = Counter(
    "hub_rate_limit_wait_seconds",
    "Time spent waiting for a connector's rate limit before calls, by connector.",
    ["connector"],
)
BREAKER_OPEN: Final = Gauge(
    "hub_breaker_open",
    "1 while a connector's circuit breaker is open in this process (max over processes).",
    ["connector"],
    multiprocess_mode="max",
)

# ------------------------------------------------------------------ read at scrape time

#: Metrics `hub.observe.collect.DatabaseCollector` reports, with their help text.
OUTBOX_MESSAGES: Final = "hub_outbox_messages"
OUTBOX_OLDEST_DUE_AGE: Final = "hub_outbox_oldest_due_age_seconds"
CONNECTOR_STOPPED: Final = "hub_connector_stopped"
CONNECTOR_QUOTA_LEFT: Final = "hub_connector_quota_left"
JOB_RUNS: Final = "hub_job_runs"
JOB_LAST_SUCCESS: Final = "hub_job_last_success_timestamp_seconds"


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, when it is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Together:
    """Several registries and collectors exposed as one (what `generate_latest` reads)."""

    def __init__(self, sources: Iterable[Collector | CollectorRegistry]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def render(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text exposition of every process's metrics (this one's, or all of them in
    multiprocess mode) plus `extra` collectors, and its content type."""
    directory = multiprocess_dir()
    if directory is not None:
        processes = CollectorRegistry()
        MultiProcessCollector(processes, path=directory)  # type: ignore[no-untyped-call]
        base: CollectorRegistry = processes
    else:
        base = REGISTRY
    together = _Together([base, *extra])
    return generate_latest(together), CONTENT_TYPE_LATEST


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve this process's metrics on `port` (a `hub worker`, which has no API)."""
    from prometheus_client import start_http_server

    directory = multiprocess_dir()
    if directory is None:
        start_http_server(port, addr=address)
        return
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=address, registry=registry)
