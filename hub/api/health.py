"""Liveness and readiness, without a token (for load balancers and orchestrators).

```
GET /api/v1/healthz    200 while the process answers at all
GET /api/v1/readyz     200 when the database (and Redis, when HUB_REDIS_URL is set) answer
                       and routes.yaml loads; 503 otherwise. Connectors are reported too:
                       a stopped connector or an open breaker makes the hub "degraded"
                       (still 200: the API itself works; the dispatcher waits or an admin
                       resumes the connector).
```
Answers name checks and states only: no host names, no error texts of the dependencies.
"""

from __future__ import annotations

import time
from typing import Any, Final

import anyio
import orjson
import redis.asyncio as aioredis
import sqlalchemy as sa
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub.api.access import hub_of
from hub.api.openapi import PUBLIC, json_body, nullable, obj, operation
from hub.context import Hub
from hub.errors import HubError
from hub.store.tables import connector_state

#: Seconds a dependency may take to answer before it counts as down.
CHECK_TIMEOUT: Final = 3.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _timed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _database(hub: Hub) -> dict[str, Any]:
    started = time.perf_counter()
    with hub.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {"ok": True, "ms": _timed(started)}


def _routes_and_connectors(hub: Hub) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """routes.yaml loads? And each connector's state, configured or seen by a dispatcher."""
    try:
        routes = hub.routes
    except HubError as exc:
        routes, check = None, {"ok": False, "error": type(exc).__name__}
    else:
        check = {"ok": True, "configured": routes is not None}
    names = set(routes.connectors) if routes is not None else set()
    with hub.engine.connect() as conn:
        rows = {row.connector: row for row in conn.execute(sa.select(connector_state))}
    connectors = []
    for name in sorted(names | set(rows)):
        row = rows.get(name)
        breaker = None
        if row is not None and row.breaker:
            try:
                snapshot = orjson.loads(row.breaker)
            except orjson.JSONDecodeError:
                snapshot = {}
            value = snapshot.get("state") if isinstance(snapshot, dict) else None
            breaker = value if isinstance(value, str) else None
        connectors.append(
            {
                "name": name,
                "state": row.state if row is not None else "running",
                "breaker": breaker,
                "paused_until": row.paused_until if row is not None else None,
            }
        )
    return check, connectors


async def _in_thread(function: Any, *args: Any) -> Any:
    """Run blocking `function` in a worker thread, giving up after CHECK_TIMEOUT."""
    with anyio.fail_after(CHECK_TIMEOUT):
        return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)


async def _redis(url: str) -> dict[str, Any]:
    started = time.perf_counter()
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
    )
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            await client.ping()
    finally:
        await client.aclose()
    return {"ok": True, "ms": _timed(started)}


def _failed(exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": "timeout" if isinstance(exc, TimeoutError) else "unreachable"}


async def readyz(request: Request) -> Response:
    hub = hub_of(request)
    checks: dict[str, Any] = {}
    try:
        checks["database"] = await _in_thread(_database, hub)
    except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as exc:
        checks["database"] = _failed(exc)
    url = hub.settings.redis_url
    if url:
        try:
            checks["redis"] = await _redis(url)
        except (RedisError, OSError, TimeoutError) as exc:
            checks["redis"] = _failed(exc)
    connectors: list[dict[str, Any]] = []
    if checks["database"]["ok"]:
        try:
            checks["routes"], connectors = await _in_thread(_routes_and_connectors, hub)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            checks["database"] = _failed(exc)
    ready = all(check["ok"] for check in checks.values())
    troubled = any(c["state"] == "stopped" or c["breaker"] == "open" for c in connectors)
    status = "not_ready" if not ready else "degraded" if troubled else "ready"
    body = {"status": status, "checks": checks, "connectors": connectors}
    return JSONResponse(body, status_code=200 if ready else 503)


routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]

_CHECK: Final = obj(
    {
        "ok": {"type": "boolean"},
        "ms": {"type": "number", "description": "How long the check took."},
        "error": {"type": "string", "description": "`timeout`, `unreachable` or an error kind."},
        "configured": {"type": "boolean", "description": "Whether routes.yaml is configured."},
    },
    optional=("ms", "error", "configured"),
)

_READINESS: Final = obj(
    {
        "status": {"type": "string", "enum": ["ready", "degraded", "not_ready"]},
        "checks": {
            "type": "object",
            "properties": {"database": _CHECK, "redis": _CHECK, "routes": _CHECK},
            "required": ["database"],
            "additionalProperties": False,
        },
        "connectors": {
            "type": "array",
            "items": obj(
                {
                    "name": {"type": "string"},
                    "state": {"type": "string", "enum": ["running", "paused", "stopped"]},
                    "breaker": nullable(
                        {"type": "string", "enum": ["closed", "open", "half_open"]}
                    ),
                    "paused_until": nullable({"type": "string"}),
                }
            ),
        },
    },
    description="Readiness: each dependency checked, and each connector's state.",
)

openapi_schemas: dict[str, Any] = {"Readiness": _READINESS}

_READYZ: Final = operation(
    "readyz",
    "Readiness",
    tag="health",
    auth=PUBLIC,
    description=(
        "Database reachable, Redis reachable when configured, routes.yaml loads; connectors "
        "stopped or with an open breaker make the hub `degraded` (still 200)."
    ),
    ok=json_body({"$ref": "#/components/schemas/Readiness"}, "Ready (or degraded)."),
)
_READYZ["responses"]["503"] = json_body(
    {"$ref": "#/components/schemas/Readiness"}, "Not ready: a check failed."
)

openapi_paths: dict[str, Any] = {
    "/api/v1/healthz": {
        "get": operation(
            "healthz",
            "Liveness",
            tag="health",
            auth=PUBLIC,
            ok=json_body(obj({"status": {"type": "string", "enum": ["ok"]}}), "Alive."),
        )
    },
    "/api/v1/readyz": {"get": _READYZ},
}
