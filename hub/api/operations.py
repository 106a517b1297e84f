"""Operations: what is on its way out, what failed, and the audit trail.

```
GET  /api/v1/deliveries                 outbox messages, newest first   deliveries:read
GET  /api/v1/deadletters                messages that will not be sent  deliveries:read
POST /api/v1/deadletters/{id}/replay    queue a dead message again      deliveries:write
GET  /api/v1/audit                      audit events, newest first      audit:read (nasional)
GET  /api/v1/audit/verify               the hash chain checked          audit:read
```
Messages are shown only for records in the caller's region. Audit events carry no region,
so only a nasional caller may list them; anyone with `audit:read` may have the chain
checked (the answer names no event's content). Lists are cursor-paginated by id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub import outbox as ops
from hub.api.access import hub_of, require, require_region
from hub.api.errors import ApiError
from hub.api.openapi import (
    REGION_PATTERN,
    Param,
    bad_parameter,
    choice,
    cursor_param,
    encode_cursor,
    integer,
    json_body,
    moment_param,
    nullable,
    obj,
    operation,
    page_of,
    parse_choice,
    parse_integer,
    parse_text,
    text,
)
from hub.audit import utc_timestamp, verify_chain
from hub.flow import Flow
from hub.store.tables import audit_events, outbox, records

OUTBOX_STATUSES: Final = ("queued", "in_flight", "done", "dead", "superseded")
KINDS: Final = ("verify", "deliver")
NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,40}$"
ACTION_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,60}$"
ENTITY_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,40}(:[^\x00-\x1f\x7f]{1,64})?$"
ACTOR_PATTERN: Final = r"^[^\x00-\x1f\x7f]{1,100}$"
MAX_ID: Final = 2**31 - 1

CONNECTOR = Param(
    "connector",
    "Only messages to this connector (a name in routes.yaml).",
    text(NAME_PATTERN, 40),
    parse_text(NAME_PATTERN, 40),
    example="siak",
)
STATUS = Param(
    "status", "Only messages in this state.", choice(OUTBOX_STATUSES), parse_choice(OUTBOX_STATUSES)
)
KIND = Param("kind", "Only verifications or deliveries.", choice(KINDS), parse_choice(KINDS))
WILAYAH = Param(
    "wilayah",
    "Only messages of records in this region (within the caller's).",
    text(REGION_PATTERN, 13),
    parse_text(REGION_PATTERN, 13),
    example="32.73.01",
)
LIMIT = Param(
    "limit", "Page size (default 50).", integer(1, 500), parse_integer(1, 500), example=50
)
MESSAGE_ID = Param(
    "id",
    "The dead message's id.",
    integer(1, MAX_ID),
    parse_integer(1, MAX_ID),
    where="path",
    example=1,
)
ACTION = Param(
    "action",
    "Only events of this action, e.g. `outbox.replayed`.",
    text(ACTION_PATTERN, 60),
    parse_text(ACTION_PATTERN, 60),
    example="batch.ingested",
)
ENTITY = Param(
    "entity",
    "Only events about this entity: `type` (e.g. `batch`) or `type:id` (e.g. `batch:42`).",
    text(ENTITY_PATTERN, 105),
    parse_text(ENTITY_PATTERN, 105),
    example="batch",
)
ACTOR = Param(
    "actor",
    "Only events by this actor, e.g. `user:siti`.",
    text(ACTOR_PATTERN, 100),
    parse_text(ACTOR_PATTERN, 100),
)
FROM = moment_param("from", "Events at or after this moment (a date means its start, UTC).")
TO = moment_param("to", "Events at or before this moment (a date means its whole day, UTC).")
DELIVERY_CURSOR = cursor_param("outbox")
DEAD_CURSOR = cursor_param("dead")
AUDIT_CURSOR = cursor_param("audit")


def _in_region(column: Any, region: str) -> Any:
    """SQL for: the code in `column` lies in `region` (whole dotted parts)."""
    return sa.or_(column == region, column.startswith(region + ".", autoescape=True))


def _page(items: list[dict[str, Any]], size: int, kind: str) -> dict[str, Any]:
    more = len(items) > size
    items = items[:size]
    cursor = encode_cursor(kind, items[-1]["id"]) if more and items else None
    return {"items": items, "next_cursor": cursor}


# ------------------------------------------------------------------ deliveries


def _delivery(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "record_id": row.record_id,
        "record_version": row.record_version,
        "record_type": row.record_type,
        "kode_wilayah": row.kode_wilayah,
        "connector": row.connector,
        "kind": row.kind,
        "step": row.step,
        "correction": bool(row.correction),
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_code": row.last_code,
        "last_error": row.last_error,
        "event_key": row.event_key,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "done_at": row.done_at,
    }


def _messages(request: Request, *, dead_only: bool) -> tuple[list[Any], int]:
    """Outbox rows (joined with their record) the caller may see, filtered: one page + 1."""
    principal = require(request, "deliveries:read")
    connector, region = CONNECTOR.read(request), WILAYAH.read(request)
    cursor = DEAD_CURSOR if dead_only else DELIVERY_CURSOR
    after, size = cursor.read(request), LIMIT.read(request) or 50
    status = "dead" if dead_only else STATUS.read(request)
    kind = None if dead_only else KIND.read(request)
    if region is not None:
        require_region(request, principal, region)
    else:
        region = principal.wilayah
    query = (
        sa.select(outbox, records.c.record_type, records.c.kode_wilayah)
        .join(records, records.c.id == outbox.c.record_id)
        .order_by(outbox.c.id.desc())
        .limit(size + 1)
    )
    if region:
        query = query.where(_in_region(records.c.kode_wilayah, region))
    if connector is not None:
        query = query.where(outbox.c.connector == connector)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if kind is not None:
        query = query.where(outbox.c.kind == kind)
    if after is not None:
        query = query.where(outbox.c.id < after)
    with hub_of(request).engine.connect() as conn:
        return list(conn.execute(query).all()), size


def _deliveries(request: Request) -> Response:
    rows, size = _messages(request, dead_only=False)
    return JSONResponse(_page([_delivery(row) for row in rows], size, "outbox"))


def _dead_letter(row: Any) -> dict[str, Any]:
    return {**ops.DeadLetter.from_row(row).as_dict(), "kode_wilayah": row.kode_wilayah}


def _dead_letters(request: Request) -> Response:
    rows, size = _messages(request, dead_only=True)
    return JSONResponse(_page([_dead_letter(row) for row in rows], size, "dead"))


def _replay(request: Request) -> Response:
    principal = require(request, "deliveries:write")
    message_id = MESSAGE_ID.read(request)
    hub = hub_of(request)
    with hub.engine.connect() as conn:
        row = conn.execute(
            sa.select(outbox.c.id, outbox.c.status, records.c.kode_wilayah)
            .join(records, records.c.id == outbox.c.record_id)
            .where(outbox.c.id == message_id)
        ).one_or_none()
    if row is None:
        raise ApiError(404, "not_found", f"no message {message_id}", {"id": message_id})
    require_region(request, principal, row.kode_wilayah)
    if row.status != "dead":
        raise ApiError(
            409,
            "conflict",
            f"message {message_id} is {row.status}, not a dead letter",
            {"id": message_id, "status": row.status},
        )
    routes = hub.routes
    if routes is None:
        raise ApiError(409, "conflict", "no routes are configured: nothing can be sent")
    flow = Flow(routes, hub.schemas, hub.protector, hub.messages)
    with hub.engine.begin() as conn:
        result = ops.replay(conn, flow, [message_id], actor=principal.subject)
    if message_id not in result.replayed:
        reason = result.skipped.get(message_id, "not a dead letter")
        raise ApiError(409, "conflict", f"message {message_id}: {reason}", {"id": message_id})
    return JSONResponse(
        {"replayed": result.replayed, "skipped": {str(k): v for k, v in result.skipped.items()}}
    )


# ------------------------------------------------------------------ audit


def _event(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "occurred_at": row.occurred_at,
        "actor": row.actor,
        "action": row.action,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "details": orjson.loads(row.details),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _audit(request: Request) -> Response:
    principal = require(request, "audit:read")
    require_region(request, principal, "")  # events carry no region: nasional only
    action, entity, actor = ACTION.read(request), ENTITY.read(request), ACTOR.read(request)
    first, last = FROM.read(request), TO.read(request)
    after, size = AUDIT_CURSOR.read(request), LIMIT.read(request) or 50
    if first is not None and last is not None and first[0] > last[0]:
        raise bad_parameter("to", "is before 'from'")
    query = sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(size + 1)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    if entity is not None:
        entity_type, has_id, entity_id = entity.partition(":")
        query = query.where(audit_events.c.entity_type == entity_type)
        if has_id:
            query = query.where(audit_events.c.entity_id == entity_id)
    if actor is not None:
        query = query.where(audit_events.c.actor == actor)
    if first is not None:
        query = query.where(audit_events.c.occurred_at >= utc_timestamp(first[0]))
    if last is not None:
        moment, whole_day = last
        if whole_day:
            try:
                end = utc_timestamp(moment + dt.timedelta(days=1))
            except OverflowError:
                end = None
            if end is not None:
                query = query.where(audit_events.c.occurred_at < end)
        else:
            query = query.where(audit_events.c.occurred_at <= utc_timestamp(moment))
    if after is not None:
        query = query.where(audit_events.c.id < after)
    with hub_of(request).engine.connect() as conn:
        rows = conn.execute(query).all()
    return JSONResponse(_page([_event(row) for row in rows], size, "audit"))


def _audit_verify(request: Request) -> Response:
    require(request, "audit:read")
    with hub_of(request).engine.connect() as conn:
        result = verify_chain(conn)
    return JSONResponse(
        {
            "ok": result.ok,
            "checked": result.checked,
            "first_bad_id": result.first_bad_id,
            "reason": result.reason,
        }
    )


async def deliveries(request: Request) -> Response:
    return await run_in_threadpool(_deliveries, request)


async def dead_letters(request: Request) -> Response:
    return await run_in_threadpool(_dead_letters, request)


async def replay(request: Request) -> Response:
    return await run_in_threadpool(_replay, request)


async def audit(request: Request) -> Response:
    return await run_in_threadpool(_audit, request)


async def audit_verify(request: Request) -> Response:
    return await run_in_threadpool(_audit_verify, request)


routes: list[BaseRoute] = [
    Route("/deliveries", deliveries, methods=["GET"]),
    Route("/deadletters", dead_letters, methods=["GET"]),
    Route("/deadletters/{id}/replay", replay, methods=["POST"]),
    Route("/audit", audit, methods=["GET"]),
    Route("/audit/verify", audit_verify, methods=["GET"]),
]

# ------------------------------------------------------------------ description

_STAMP: Final = {"type": "string", "description": "ISO-8601 UTC timestamp."}
_TEXT: Final = {"type": "string"}

openapi_schemas: dict[str, Any] = {
    "Delivery": obj(
        {
            "id": {"type": "integer"},
            "record_id": {"type": "integer"},
            "record_version": {"type": "integer"},
            "record_type": _TEXT,
            "kode_wilayah": {"type": "string", "pattern": REGION_PATTERN},
            "connector": _TEXT,
            "kind": choice(KINDS),
            "step": {"type": "integer"},
            "correction": {"type": "boolean"},
            "status": choice(OUTBOX_STATUSES),
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt_at": _STAMP,
            "last_code": nullable(_TEXT),
            "last_error": {**nullable(_TEXT), "description": "A summary without PII."},
            "event_key": nullable(_TEXT),
            "created_at": _STAMP,
            "updated_at": _STAMP,
            "done_at": nullable(_STAMP),
        },
        description="One outbox message: a verification or a delivery of a record.",
    ),
    "DeadLetter": obj(
        {
            "id": {"type": "integer"},
            "connector": _TEXT,
            "kind": choice(KINDS),
            "record_id": {"type": "integer"},
            "record_type": _TEXT,
            "record_version": {"type": "integer"},
            "kode_wilayah": {"type": "string", "pattern": REGION_PATTERN},
            "attempts": {"type": "integer", "minimum": 0},
            "code": nullable(_TEXT),
            "error": nullable(_TEXT),
            "failed_at": _STAMP,
            "event_key": nullable(_TEXT),
        },
        description="A message that will not be sent again unless replayed.",
    ),
    "AuditEvent": obj(
        {
            "id": {"type": "integer"},
            "occurred_at": _STAMP,
            "actor": _TEXT,
            "action": _TEXT,
            "entity_type": _TEXT,
            "entity_id": _TEXT,
            "details": {"type": "object", "description": "Counts, ids and codes; never PII."},
            "prev_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
        description="One event of the hash-chained audit trail.",
    ),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


openapi_paths: dict[str, Any] = {
    "/api/v1/deliveries": {
        "get": operation(
            "listDeliveries",
            "Outbox messages, newest first",
            tag="operations",
            auth="deliveries:read",
            description="Messages of records in the caller's region (or `wilayah` within it).",
            params=[CONNECTOR, STATUS, KIND, WILAYAH, DELIVERY_CURSOR, LIMIT],
            ok=json_body(page_of(_ref("Delivery"), "A page of outbox messages.")),
        )
    },
    "/api/v1/deadletters": {
        "get": operation(
            "listDeadLetters",
            "Dead letters, newest first",
            tag="operations",
            auth="deliveries:read",
            description="Dead messages of records in the caller's region.",
            params=[CONNECTOR, WILAYAH, DEAD_CURSOR, LIMIT],
            ok=json_body(page_of(_ref("DeadLetter"), "A page of dead letters.")),
        )
    },
    "/api/v1/deadletters/{id}/replay": {
        "post": operation(
            "replayDeadLetter",
            "Queue a dead letter again",
            tag="operations",
            auth="deliveries:write",
            description=(
                "Queues the message again with a fresh attempt count (messages of the same "
                "event come back with it) and audits each replay (`outbox.replayed`)."
            ),
            params=[MESSAGE_ID],
            errors=[404, 409],
            ok=json_body(
                obj(
                    {
                        "replayed": {"type": "array", "items": {"type": "integer"}},
                        "skipped": {"type": "object", "additionalProperties": _TEXT},
                    }
                ),
                "The messages queued again.",
            ),
        )
    },
    "/api/v1/audit": {
        "get": operation(
            "listAuditEvents",
            "Audit events, newest first",
            tag="operations",
            auth="audit:read",
            description="For nasional callers only: events carry no region.",
            params=[ACTION, ENTITY, ACTOR, FROM, TO, AUDIT_CURSOR, LIMIT],
            ok=json_body(page_of(_ref("AuditEvent"), "A page of audit events.")),
        )
    },
    "/api/v1/audit/verify": {
        "get": operation(
            "verifyAuditChain",
            "Check the audit hash chain",
            tag="operations",
            auth="audit:read",
            description="Recomputes every event's hash and link; names the first break.",
            ok=json_body(
                obj(
                    {
                        "ok": {"type": "boolean"},
                        "checked": {"type": "integer", "minimum": 0},
                        "first_bad_id": nullable({"type": "integer"}),
                        "reason": nullable(_TEXT),
                    }
                ),
                "The outcome of the check.",
            ),
        )
    },
}
