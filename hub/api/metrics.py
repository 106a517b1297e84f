"""`GET /metrics`: the hub's figures for Prometheus (text exposition format).

Every process's counters and histograms (all granian workers of `hub serve` in
multiprocess mode), plus what the database says when scraped: outbox depth and age,
connector state and quota, job runs (`hub.observe.collect`). No personal data in any
label. Open by default, like `/api/v1/healthz`, for a scraper inside the intranet; with
`HUB_METRICS_TOKEN` set, a scraper must send `Authorization: Bearer <that token>`.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hub.api.access import hub_of
from hub.api.errors import ApiError
from hub.api.openapi import PUBLIC, operation
from hub.observe.collect import DatabaseCollector
from hub.observe.metrics import render


def _scrape_allowed(request: Request) -> None:
    expected = os.environ.get("HUB_METRICS_TOKEN", "")
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise ApiError(
            401,
            "unauthorized",
            "this scrape needs the metrics token",
            headers={"WWW-Authenticate": 'Bearer realm="lampid-hub-metrics"'},
        )


async def metrics(request: Request) -> Response:
    _scrape_allowed(request)
    state = request.app.state
    collector = getattr(state, "database_collector", None)
    if collector is None:
        collector = state.database_collector = DatabaseCollector(hub_of(request).engine)
    body, content_type = await run_in_threadpool(render, [collector])
    return Response(
        body, media_type=content_type.split(";")[0], headers={"Content-Type": content_type}
    )


routes: list[BaseRoute] = [Route("/metrics", metrics, methods=["GET"])]

openapi_paths: dict[str, Any] = {
    "/metrics": {
        "get": operation(
            "metrics",
            "Metrics for Prometheus",
            tag="health",
            auth=PUBLIC,
            description=(
                "Prometheus text format: rows, issues, pipeline stages, API requests, "
                "connector calls, outbox depth and age, job runs. Needs "
                "`Authorization: Bearer <HUB_METRICS_TOKEN>` when that variable is set."
            ),
            errors=(401,),
            ok={
                "description": "The metrics.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        )
    }
}
