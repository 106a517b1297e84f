"""The API application: `create_app(hub)` is what `hub serve` runs.

```
/api/v1/...                 the versioned API (hub/api/<area>.py, each with `routes`)
/oauth/token                OAuth2 client credentials for systems
/.well-known/jwks.json      the public keys of the hub's tokens
/openapi.json, /docs        the API description and an offline page
/                           the operator portal (hub/portal), on every other path
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount

from hub.api import (
    auth_routes,
    batches,
    catalog,
    health,
    metrics,
    openapi,
    operations,
    records,
    stats,
)
from hub.api.errors import EXCEPTION_HANDLERS, error_response
from hub.api.limits import DEFAULT_POLICY, CallerLimits, LimitPolicy, verdict_headers
from hub.api.routing import IndexedRouter
from hub.api.tokens import TokenService
from hub.context import Hub
from hub.observe.asgi import Observe
from hub.portal import mount as portal_mount

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Largest request body (an uploaded report), unless HUB_API_MAX_BODY says otherwise.
MAX_BODY: Final = 50 * 1024 * 1024

SECURITY_HEADERS: Final = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


class Guard:
    """Around every HTTP request: 413 for a body over `limit` bytes (by Content-Length or
    as it streams in), and the security headers and the caller's RateLimit headers added to
    the answer. One middleware rather than three: each layer costs every request."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with `request.state`: the limits' verdict

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                present = {name for name, _ in headers}
                extra = [
                    h for h in (*SECURITY_HEADERS, *verdict_headers(scope)) if h[0] not in present
                ]
                message["headers"] = [*headers, *extra]
            await send(message)

        may_have_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await self._refuse(scope, receive, send_with_headers)
                    return
                may_have_body = value != b"0"
            elif name == b"transfer-encoding":
                may_have_body = True

        if not may_have_body:
            await self.app(scope, receive, send_with_headers)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send_with_headers)
        except _TooLarge:
            await self._refuse(scope, receive, send_with_headers)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "too_large", f"the request is larger than {self.limit // (1024 * 1024)} MB"
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


#: Every module whose routes the app serves; each describes them in `openapi_paths`.
API_MODULES: Final = (
    health,
    auth_routes,
    batches,
    records,
    catalog,
    stats,
    operations,
    openapi,
    metrics,
)
RATE_LIMIT_HEADERS: Final = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def create_app(
    hub: Hub,
    *,
    max_body: int = MAX_BODY,
    cors_origins: tuple[str, ...] = (),
    tokens: TokenService | None = None,
    limits: LimitPolicy | None = DEFAULT_POLICY,
    limit_overrides: Mapping[str, LimitPolicy] | None = None,
    caller_limits: CallerLimits | None = None,
) -> Starlette:
    """The API on an open hub. CORS is off unless `cors_origins` are given.

    Every caller is limited by `limits` (requests per second, burst, per day), or by its
    entry in `limit_overrides` (by subject, e.g. `client:siak-bandung`); shared through
    Redis when the hub's settings name one. `limits=None` turns the limits off;
    `caller_limits` replaces them with a ready-made `CallerLimits`.
    """
    api: list[BaseRoute] = [
        *health.routes,
        *auth_routes.routes,
        *batches.routes,
        *records.routes,
        *catalog.routes,
        *stats.routes,
        *operations.routes,
    ]
    middleware = [
        Middleware(Observe),
        Middleware(Guard, limit=max_body),
    ]
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                expose_headers=["Retry-After", *RATE_LIMIT_HEADERS],
            )
        )
    if caller_limits is None and limits is not None:
        caller_limits = CallerLimits(
            limits, dict(limit_overrides or {}), redis_url=hub.settings.redis_url
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if caller_limits is not None:
            caller_limits.close()
        verifier = getattr(app.state, "nik_verifier", None)
        if verifier is not None:
            await verifier.aclose()

    app = Starlette(
        routes=[
            Mount("/api/v1", app=IndexedRouter(api)),  # first: nearly every request is for it
            *auth_routes.root_routes,
            *openapi.routes,
            *metrics.routes,
            portal_mount(),  # the operator portal (hub/portal): every other path
        ],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.tokens = tokens or TokenService(hub.engine, hub.protector)
    if caller_limits is not None:
        app.state.caller_limits = caller_limits
    app.state.openapi = openapi.build_document(API_MODULES)
    return app
