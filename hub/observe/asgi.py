"""`Observe`: the ASGI middleware that counts and times every HTTP request by its route
template (`/api/v1/batches/{batch_id}`, never the path itself: paths can carry a NIK) and,
while tracing is on, wraps it in a server span continuing the caller's `traceparent`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from opentelemetry.trace import SpanKind

from hub.observe import tracing
from hub.observe.metrics import HTTP_REQUESTS, HTTP_SECONDS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The route label of requests no route took (404s): one label, whatever the path was.
UNMATCHED: Final = "unmatched"
#: Methods counted by name; any other is counted as "other" (labels stay few).
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the route that answered, with the prefix of the mount it is under."""
    route = scope.get("route")
    path = getattr(route, "path_format", None)  # "/batches/{batch_id}", without converters
    if not isinstance(path, str):
        return UNMATCHED
    return f"{scope.get('root_path', '')}{path}" or "/"


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if not tracing.enabled():
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                self._count(scope, status, time.perf_counter() - started)
            return
        parent = tracing.incoming(scope["headers"])
        with tracing.span(
            f"{scope['method']} request", kind=SpanKind.SERVER, parent=parent
        ) as current:
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                template = route_template(scope)
                if current is not None:
                    current.update_name(f"{scope['method']} {template}")
                    current.set_attribute("http.request.method", scope["method"])
                    current.set_attribute("http.route", template)
                    current.set_attribute("http.response.status_code", status)
                self._count(scope, status, time.perf_counter() - started)

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (route_template(scope), method, status)
        series = self._series.get(key)
        if series is None:
            series = (
                HTTP_REQUESTS.labels(key[0], key[1], str(status)),
                HTTP_SECONDS.labels(key[0], key[1]),
            )
            if len(self._series) < 10_000:  # bounded: templates x methods x statuses
                self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)
