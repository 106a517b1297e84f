"""Statistics: records per type, status, region and month, from the read model.

```
GET /api/v1/stats?type=&status=&wilayah=&level=&from=&to=
```
Answered with one `GROUP BY` over `record_counts` (kept up to date in the same transaction
as every change of a record's status, see `hub.stats`), never by scanning `records`. The
region of a row is the prefix of the desa code at `level` (1 provinsi .. 4 desa), so any
level is a prefix sum. Only the caller's region is counted: `wilayah` narrows it, and a
`wilayah` outside it is refused (403, audited).
"""

from __future__ import annotations

import time
from typing import Any, Final

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub.api.access import hub_of, require, require_region
from hub.api.errors import ApiError
from hub.api.openapi import (
    MONTH_PATTERN,
    REGION_PATTERN,
    Param,
    bad_parameter,
    choice,
    integer,
    json_body,
    nullable,
    obj,
    operation,
    parse_choice,
    parse_integer,
    parse_text,
    text,
)
from hub.context import Hub
from hub.store.tables import record_counts
from hub.wilayah import code_level

#: Every status a record can have (hub.flow and hub.batch).
RECORD_STATUSES: Final = (
    "valid",
    "verifying",
    "verify_failed",
    "pending_approval",
    "approved",
    "rejected",
    "queued",
    "delivered",
    "dead",
)
#: Length of a dotted code per level: the prefix of a desa code that names its region.
CODE_WIDTH: Final = {1: 2, 2: 5, 3: 8, 4: 13}
#: More groups than this: ask for a coarser level or a narrower region.
MAX_GROUPS: Final = 20_000

TYPE = Param(
    "type",
    "Only this record type.",
    text(r"^[a-z][a-z_]{0,19}$", 20),
    parse_text(r"^[a-z][a-z_]{0,19}$", 20),
    example="kelahiran",
)
STATUS = Param(
    "status", "Only records in this status.", choice(RECORD_STATUSES), parse_choice(RECORD_STATUSES)
)
WILAYAH = Param(
    "wilayah",
    "Only this region (within the caller's); the caller's region when absent.",
    text(REGION_PATTERN, 13),
    parse_text(REGION_PATTERN, 13),
    example="32.73",
)
LEVEL = Param(
    "level",
    "Group by regions of this level (1 provinsi .. 4 desa), at least the level of "
    "`wilayah`; one below it when absent.",
    integer(1, 4),
    parse_integer(1, 4),
)
FROM = Param(
    "from",
    "First event month, `YYYY-MM` (records without an event date are then left out).",
    text(MONTH_PATTERN, 7),
    parse_text(MONTH_PATTERN, 7),
    example="2025-01",
)
TO = Param(
    "to",
    "Last event month, `YYYY-MM`, inclusive.",
    text(MONTH_PATTERN, 7),
    parse_text(MONTH_PATTERN, 7),
    example="2025-12",
)
PARAMS: Final = (TYPE, STATUS, WILAYAH, LEVEL, FROM, TO)


#: Seconds an answer is reused for the same question (the read model is exact; a statistics
#: page a second old is fine, and it keeps a burst of dashboards off the database).
STATS_TTL: Final = 1.0
_CACHE_SIZE: Final = 1024


async def stats(request: Request) -> Response:
    principal = require(request, "stats:read")
    record_type, status, region = TYPE.read(request), STATUS.read(request), WILAYAH.read(request)
    level, first, last = LEVEL.read(request), FROM.read(request), TO.read(request)
    hub = hub_of(request)
    if region is None:
        region = principal.wilayah
    else:
        if not principal.covers(region):
            await run_in_threadpool(require_region, request, principal, region)
    if record_type is not None and record_type not in hub.schemas.types():
        raise bad_parameter("type", f"is not a record type ({', '.join(hub.schemas.types())})")
    if first is not None and last is not None and first > last:
        raise bad_parameter("to", "is before 'from'")
    region_level = (code_level(region) or 0) if region else 0
    if level is None:
        level = min(region_level + 1, 4)
    elif level < region_level:
        raise bad_parameter("level", f"must be at least {region_level}, the level of {region}")

    key = (region, record_type, status, level, first, last)
    cache: dict[Any, tuple[float, bytes]] = request.app.state.__dict__.setdefault("stats_cache", {})
    cached = cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < STATS_TTL:
        return Response(cached[1], media_type="application/json")
    refreshing: set[Any] = request.app.state.__dict__.setdefault("stats_refreshing", set())
    if cached is not None and key in refreshing:  # one request refreshes, the rest get the
        return Response(cached[1], media_type="application/json")  # answer a moment older
    refreshing.add(key)
    try:
        response = await run_in_threadpool(
            _answer, hub, region, record_type, status, level, first, last
        )
    finally:
        refreshing.discard(key)
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = (time.monotonic(), bytes(response.body))
    return response


def _answer(
    hub: Hub,
    region: str,
    record_type: str | None,
    status: str | None,
    level: int,
    first: str | None,
    last: str | None,
) -> Response:
    area = sa.func.substr(record_counts.c.kode_wilayah, 1, CODE_WIDTH[level]).label("area")
    total = sa.func.sum(record_counts.c.count).label("total")
    query = sa.select(
        record_counts.c.record_type, record_counts.c.status, area, record_counts.c.month, total
    )
    if region:
        query = query.where(
            sa.or_(
                record_counts.c.kode_wilayah == region,
                record_counts.c.kode_wilayah.startswith(region + ".", autoescape=True),
            )
        )
    if record_type is not None:
        query = query.where(record_counts.c.record_type == record_type)
    if status is not None:
        query = query.where(record_counts.c.status == status)
    if first is not None or last is not None:
        query = query.where(record_counts.c.month != "")
    if first is not None:
        query = query.where(record_counts.c.month >= first)
    if last is not None:
        query = query.where(record_counts.c.month <= last)
    keys = (record_counts.c.record_type, record_counts.c.status, area, record_counts.c.month)
    query = query.group_by(*keys).having(total > 0).order_by(*keys).limit(MAX_GROUPS + 1)
    with hub.engine.connect() as conn:
        rows = conn.execute(query).all()
    if len(rows) > MAX_GROUPS:
        raise ApiError(
            422,
            "too_many_groups",
            f"more than {MAX_GROUPS} groups: choose a coarser level or a narrower region",
            {"max_groups": MAX_GROUPS},
        )
    names = hub.regions
    groups = [
        {
            "type": row.record_type,
            "status": row.status,
            "wilayah": row.area,
            "nama": names.name_of(row.area),
            "month": row.month or None,
            "count": int(row.total),
        }
        for row in rows
    ]
    return JSONResponse(
        {
            "wilayah": region or None,
            "level": level,
            "filters": {"type": record_type, "status": status, "from": first, "to": last},
            "groups": groups,
            "total": sum(group["count"] for group in groups),
        }
    )


routes: list[BaseRoute] = [Route("/stats", stats, methods=["GET"])]

_MONTH: Final = {"type": "string", "pattern": MONTH_PATTERN}

openapi_schemas: dict[str, Any] = {
    "Stats": obj(
        {
            "wilayah": {
                **nullable({"type": "string", "pattern": REGION_PATTERN}),
                "description": "The region counted; null for the whole country.",
            },
            "level": integer(1, 4),
            "filters": obj(
                {
                    "type": nullable({"type": "string"}),
                    "status": nullable({"type": "string"}),
                    "from": nullable(_MONTH),
                    "to": nullable(_MONTH),
                }
            ),
            "groups": {
                "type": "array",
                "items": obj(
                    {
                        "type": {"type": "string"},
                        "status": {"type": "string"},
                        "wilayah": {"type": "string", "pattern": REGION_PATTERN},
                        "nama": nullable({"type": "string"}),
                        "month": {
                            **nullable(_MONTH),
                            "description": "Event month; null for records without a date.",
                        },
                        "count": {"type": "integer", "minimum": 1},
                    }
                ),
            },
            "total": {"type": "integer", "minimum": 0},
        },
        description="Record counts grouped by type, status, region and event month.",
    )
}

openapi_paths: dict[str, Any] = {
    "/api/v1/stats": {
        "get": operation(
            "getStats",
            "Record counts per type, status, region and month",
            tag="stats",
            auth="stats:read",
            description=(
                "Answered from the statistics read model (`record_counts`), never by scanning "
                "records. A group's `wilayah` is the region at `level` containing the records' "
                "desa. Only the caller's region is counted; a `wilayah` outside it is refused "
                "(403, audited). More than 20,000 groups: 422 `too_many_groups`."
            ),
            params=PARAMS,
            errors=[422],
            ok=json_body({"$ref": "#/components/schemas/Stats"}),
        )
    }
}
