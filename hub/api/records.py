"""Records: submitted as JSON, listed, read, approved or rejected; and NIK verification.

```
POST /records/{type}             one record (object) or a list, canonical field names
POST /validate/{type}            the same, as a dry run: nothing is stored
GET  /records                    ?type=&status=&wilayah=&from=&to=&limit=&cursor=
GET  /records/{id}               values (PII masked without pii:read), history, deliveries
GET  /records/{id}/trace         chain of custody, source cells to receipt (hub.custody)
POST /records/{id}/approve       {"note"?}           scope records:approve, own kecamatan
POST /records/{id}/reject        {"reason"}          (a reason is required)
POST /records/approve            {"ids": [...], "note"?}      per id
POST /records/reject             {"ids": [...], "reason"}     per id
GET  /nik/{nik}/verify           see hub.api.verify
```

JSON records go through the file pipeline unchanged (`run_batch` over `RecordsSource`): a
table whose header is the schema's canonical field names and whose rows are the objects, so
normalisation, validation, deduplication, encryption, routing and audit are those of an
upload; a stored submission is a batch of its own (source `api`). Each item gets a result,
`{index, outcome: valid | invalid | duplicate, record_id?, status?, issues}`:

- 200: no item is invalid (duplicates are accepted: the record is already held);
- 207: some items invalid, some accepted; the accepted ones are stored;
- 422: no item accepted; the error body's `details` holds the same per-item results.

`Idempotency-Key` (POST /records only): the first answer to a key is kept per caller, sealed
(messages may quote values); the same key with the same type and body gets it again (header
`Idempotent-Replayed: true`), with another body 422 `idempotency_mismatch`, and while the
first is still running 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.base import Source
from hub.api import verify
from hub.api.access import hub_of
from hub.api.errors import ApiError
from hub.api.principal import Principal, covers
from hub.api.support import (
    MAX_ID,
    authorize,
    bad_parameter,
    encode_cursor,
    guard_region,
    has_control,
    holds_nik,
    json_body,
    page_after,
    page_limit,
    path_id,
    shown_values,
    within,
)
from hub.audit import AuditLog
from hub.batch import utc_now
from hub.context import Hub
from hub.flow import Flow
from hub.normalise import normalise_wilayah_text
from hub.pipeline import BatchReport, run_batch
from hub.records import CellValue, Issue, Provenance, RawRow
from hub.schemas import RecordSchema
from hub.store.tables import api_idempotency, outbox, record_history, records

#: Every status a record can have (hub.flow).
STATUSES: Final = (
    "valid",
    "verifying",
    "pending_approval",
    "approved",
    "queued",
    "delivered",
    "rejected",
    "verify_failed",
    "dead",
)
MAX_ITEMS: Final = 1000
RECORDS_PAGE: Final = 50
RECORDS_PAGE_MAX: Final = 500
BULK_MAX: Final = 500
TEXT_MAX: Final = 500
#: The first column of a JSON table: a row label no data cell can be confused with, so the
#: layout finder never takes an object for a title, a column-number row or a trailer.
ROW_COLUMN: Final = "No"
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_KEY: Final = re.compile(r"[\x21-\x7e]{1,200}")
_DUPLICATE_CODES: Final = frozenset({"duplicate", "duplicate_in_file"})


# ------------------------------------------------------------------ JSON records as a table


class RecordsSource(Source):
    """JSON objects as a source: a header row (row 0) of field names, then one row per
    object, row `index + 1`, labelled `#<row>` in the first column."""

    name: ClassVar[str] = "api"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(
        self,
        header: Sequence[str],
        rows: Sequence[tuple[int, tuple[CellValue, ...]]],
        locator: str,
    ) -> None:
        super().__init__({"path": locator})
        self.header = tuple(header)
        self.rows = rows
        self.locator = locator

    def read(self, bookmark: str | None = None) -> Iterator[RawRow]:
        yield RawRow(self.header, Provenance("api", self.locator, 0, ""))
        for row, cells in self.rows:
            yield RawRow(cells, Provenance("api", self.locator, row, ""))


def _early(field_name: str | None, code: str, message: str) -> dict[str, Any]:
    return {"field": field_name, "code": code, "severity": "error", "message": message}


@dataclass
class Prepared:
    """A request's items: the rows for the pipeline and what was refused before it."""

    count: int
    header: tuple[str, ...]
    rows: list[tuple[int, tuple[CellValue, ...]]] = field(default_factory=list)
    early: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    regions: set[str] = field(default_factory=set)


def prepare(schema: RecordSchema, items: Sequence[Any]) -> Prepared:
    """Rows of the items that are objects of known fields with plain values; the others
    are invalid at once. `regions` collects the reporting regions the items name."""
    names = tuple(schema.fields)
    prepared = Prepared(len(items), (ROW_COLUMN, *names))
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            prepared.early[index] = [
                _early(None, "not_an_object", "Setiap rekaman harus berupa objek JSON.")
            ]
            continue
        problems = []
        for key, value in item.items():
            if key not in schema.fields:
                problems.append(
                    _early(
                        None,
                        "unknown_field",
                        f"Field {key[:60]!r} tidak dikenal untuk {schema.schema_id}; "
                        "gunakan nama field kanonik.",
                    )
                )
            elif value is not None and not isinstance(value, str | int | float):
                problems.append(
                    _early(key, "not_a_value", f"{key} harus berupa teks, angka, atau null.")
                )
            elif isinstance(value, str) and has_control(value):
                problems.append(
                    _early(key, "not_a_value", f"{key} berisi karakter kendali (mis. NUL).")
                )
        if problems:
            prepared.early[index] = problems
            continue
        named = item.get(schema.wilayah_field)
        if isinstance(named, str | int) and not isinstance(named, bool):
            code, _ = normalise_wilayah_text(named)
            if code is not None:
                prepared.regions.add(str(code))
        row = index + 1
        prepared.rows.append((row, (f"#{row}", *(item.get(name) for name in names))))
    return prepared


def _issue(issue: Issue) -> dict[str, Any]:
    return {
        "field": issue.field,
        "code": issue.code,
        "severity": issue.severity,
        "message": issue.message,
    }


def _outcome(issues: Sequence[Issue]) -> str:
    if any(issue.severity == "error" for issue in issues):
        return "invalid"
    if any(issue.code in _DUPLICATE_CODES for issue in issues):
        return "duplicate"
    return "valid"


def submit(
    hub: Hub, caller: Principal, schema: RecordSchema, prepared: Prepared, dry_run: bool
) -> tuple[int, dict[str, Any]]:
    """Run the items through the pipeline; (HTTP status, body) of the answer."""
    report: BatchReport | None = None
    if prepared.rows:
        source = RecordsSource(prepared.header, prepared.rows, f"api:{schema.record_type}")
        report = run_batch(
            hub,
            source,
            schema.record_type,
            scope=caller.wilayah or None,
            dry_run=dry_run,
            actor=caller.subject[:100],
            file_name=f"POST /api/v1/records/{schema.record_type}",
        )
    by_row: dict[int, list[Issue]] = defaultdict(list)
    stored: dict[str, tuple[int, str]] = {}
    if report is not None:
        for issue in report.issues:
            by_row[issue.row].append(issue)
        if report.batch_id is not None:
            with hub.engine.connect() as conn:
                stored = {
                    row.row_ref: (row.id, row.status)
                    for row in conn.execute(
                        sa.select(records.c.id, records.c.row_ref, records.c.status).where(
                            records.c.batch_id == report.batch_id
                        )
                    )
                }
    results: list[dict[str, Any]] = []
    for index in range(prepared.count):
        if index in prepared.early:
            results.append({"index": index, "outcome": "invalid", "issues": prepared.early[index]})
            continue
        found = by_row.get(index + 1, [])
        result: dict[str, Any] = {"index": index, "outcome": _outcome(found)}
        held = stored.get(f"#{index + 1}")
        if result["outcome"] == "valid" and held is not None:
            result["record_id"], result["status"] = held
        result["issues"] = [_issue(issue) for issue in found]
        results.append(result)
    outcomes = [result["outcome"] for result in results]
    counts = {
        "items": len(results),
        "valid": outcomes.count("valid"),
        "invalid": outcomes.count("invalid"),
        "duplicates": outcomes.count("duplicate"),
    }
    body = {
        "type": schema.record_type,
        "dry_run": dry_run,
        "batch_id": report.batch_id if report is not None else None,
        "counts": counts,
        "routed": report.routed if report is not None else {},
        "results": results,
    }
    if counts["invalid"] == 0:
        return 200, body
    if counts["invalid"] < counts["items"]:
        return 207, body
    message = "no record was accepted" if counts["items"] > 1 else "the record is not valid"
    return 422, {"error": {"code": "invalid_records", "message": message, "details": body}}


# ------------------------------------------------------------------ idempotency


def _aad(principal: str, key: str) -> bytes:
    return f"api_idempotency\x1f{principal}\x1f{key}".encode()


def reserve(
    hub: Hub, principal: str, key: str, request_hash: str
) -> tuple[int, dict[str, Any]] | None:
    """Claim `key` for this request; or the stored answer to the same request (422 for
    another request under the key, 409 while the first still runs)."""
    for _ in range(2):
        try:
            with hub.engine.begin() as conn:
                row = conn.execute(
                    sa.select(api_idempotency).where(
                        api_idempotency.c.principal == principal, api_idempotency.c.key == key
                    )
                ).one_or_none()
                if row is None:
                    conn.execute(
                        api_idempotency.insert().values(
                            principal=principal,
                            key=key,
                            request_hash=request_hash,
                            status_code=0,
                            response="{}",
                            created_at=utc_now(),
                        )
                    )
                    return None
        except sa.exc.IntegrityError:
            continue  # another request claimed it in between: read its row
        if row.request_hash != request_hash:
            raise ApiError(
                422,
                "idempotency_mismatch",
                "this Idempotency-Key was used with another request body",
            )
        if row.status_code == 0:
            raise ApiError(409, "conflict", "a request with this Idempotency-Key is running")
        sealed = orjson.loads(row.response)["sealed"]
        body = hub.protector.open_json(bytes.fromhex(sealed), _aad(principal, key))
        return int(row.status_code), body
    raise ApiError(409, "conflict", "a request with this Idempotency-Key is running")


def remember(
    hub: Hub, principal: str, key: str, status: int, body: Mapping[str, Any] | None
) -> None:
    """Keep the answer under the key; `body=None` gives the key up (the request failed)."""
    where = (api_idempotency.c.principal == principal, api_idempotency.c.key == key)
    with hub.engine.begin() as conn:
        if body is None:
            conn.execute(api_idempotency.delete().where(*where, api_idempotency.c.status_code == 0))
            return
        sealed = hub.protector.seal_json(body, _aad(principal, key)).hex()
        conn.execute(
            api_idempotency.update()
            .where(*where)
            .values(status_code=status, response=orjson.dumps({"sealed": sealed}).decode())
        )


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise ApiError(
            400,
            "bad_request",
            "Idempotency-Key must be 1 to 200 visible ASCII characters",
            {"header": "Idempotency-Key"},
        )
    return key


# ------------------------------------------------------------------ submitting


async def _submit(request: Request, *, dry_run: bool) -> Response:
    caller = await authorize(request, "records:write")
    hub = hub_of(request)
    schema = hub.schemas.get(request.path_params["record_type"])  # 404 for an unknown type
    key = None if dry_run else _idempotency_key(request)
    body = await json_body(request)
    if not isinstance(body, list | dict):
        raise ApiError(422, "invalid", "send one record (an object) or a list of records")
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > MAX_ITEMS:
        raise ApiError(422, "invalid", f"send 1 to {MAX_ITEMS} records at a time")
    prepared = prepare(schema, items)
    for code in sorted(prepared.regions):
        await guard_region(request, caller, code)
    principal = caller.subject[:120]
    if key is not None:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        digest = hashlib.sha256(schema.record_type.encode() + b"\x1f" + canonical).hexdigest()
        replay = await run_in_threadpool(reserve, hub, principal, key, digest)
        if replay is not None:
            status, answer = replay
            return JSONResponse(answer, status, headers={"Idempotent-Replayed": "true"})
    try:
        status, answer = await run_in_threadpool(submit, hub, caller, schema, prepared, dry_run)
    except BaseException:
        if key is not None:
            await run_in_threadpool(remember, hub, principal, key, 0, None)
        raise
    if key is not None:
        await run_in_threadpool(remember, hub, principal, key, status, answer)
    return JSONResponse(answer, status)


async def submit_records(request: Request) -> Response:
    return await _submit(request, dry_run=False)


async def validate_records(request: Request) -> Response:
    return await _submit(request, dry_run=True)


# ------------------------------------------------------------------ reading


def _query_date(request: Request, name: str) -> str | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise bad_parameter(name, f"{name} must be a date, YYYY-MM-DD")


async def _region_filter(request: Request, caller: Principal) -> str:
    """The region to list: `?wilayah=` inside the caller's region, narrowed to it when
    wider; 403 (audited) when the two do not overlap."""
    text = request.query_params.get("wilayah")
    if text is None:
        return caller.wilayah
    code, _ = normalise_wilayah_text(text)
    if code is None:
        raise bad_parameter("wilayah", "wilayah must be a region code such as 32.73.01")
    wanted = str(code)
    if covers(wanted, caller.wilayah):
        return caller.wilayah
    await guard_region(request, caller, wanted)
    return wanted


def _list_page(hub: Hub, filters: list[sa.ColumnElement[bool]], limit: int) -> list[Any]:
    c = records.c
    query = (
        sa.select(
            c.id,
            c.record_type,
            c.schema_version,
            c.status,
            c.version,
            c.kode_wilayah,
            c.event_date,
            c.route,
            c.step,
            c.flags,
            c.reason,
            c.batch_id,
            c.created_at,
            c.updated_at,
        )  # fmt: skip
        .where(*filters)
        .order_by(c.id)
        .limit(limit + 1)
    )
    with hub.engine.connect() as conn:
        return list(conn.execute(query))


def _summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.record_type,
        "schema_version": row.schema_version,
        "status": row.status,
        "version": row.version,
        "kode_wilayah": row.kode_wilayah,
        "event_date": row.event_date,
        "route": row.route,
        "step": row.step,
        "flags": orjson.loads(row.flags) if row.flags else [],
        "reason": row.reason,
        "batch_id": row.batch_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def list_records(request: Request) -> Response:
    caller = await authorize(request, "records:read")
    hub = hub_of(request)
    limit = page_limit(request, RECORDS_PAGE, RECORDS_PAGE_MAX)
    after = page_after(request)
    filters: list[sa.ColumnElement[bool]] = [records.c.id > after]
    record_type = request.query_params.get("type")
    if record_type is not None:
        if record_type not in hub.schemas.types():
            raise bad_parameter("type", f"type must be one of {', '.join(hub.schemas.types())}")
        filters.append(records.c.record_type == record_type)
    status = request.query_params.get("status")
    if status is not None:
        if status not in STATUSES:
            raise bad_parameter("status", f"status must be one of {', '.join(STATUSES)}")
        filters.append(records.c.status == status)
    start, end = _query_date(request, "from"), _query_date(request, "to")
    if start is not None and end is not None and start > end:
        raise bad_parameter("from", "from is after to")
    if start is not None:
        filters.append(records.c.event_date >= start)
    if end is not None:
        filters.append(records.c.event_date <= end)
    filters.append(within(records.c.kode_wilayah, await _region_filter(request, caller)))
    rows = await run_in_threadpool(_list_page, hub, filters, limit)
    page = rows[:limit]
    return JSONResponse(
        {
            "items": [_summary(row) for row in page],
            "next_cursor": encode_cursor(page[-1].id) if len(rows) > limit else None,
        }
    )


def _detail(hub: Hub, record_id: int) -> tuple[Any, list[Any], list[Any]] | None:
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(records).where(records.c.id == record_id)).one_or_none()
        if row is None:
            return None
        history = list(
            conn.execute(
                sa.select(record_history)
                .where(record_history.c.record_id == record_id)
                .order_by(record_history.c.version)
            )
        )
        deliveries = list(
            conn.execute(
                sa.select(outbox).where(outbox.c.record_id == record_id).order_by(outbox.c.id)
            )
        )
    return row, history, deliveries


def _values(hub: Hub, record_type: str, natural_key: bytes, data: str, pii: bytes) -> Any:
    """A stored version's values, PII decrypted (as `Flow.values`)."""
    values: dict[str, Any] = orjson.loads(data)
    values.update(hub.protector.open_json(pii, record_type.encode() + natural_key))
    return values


def _record_body(
    hub: Hub, row: Any, history: list[Any], deliveries: list[Any], reveal: bool
) -> dict[str, Any]:
    schema = hub.schemas.get(row.record_type, row.schema_version)
    key = bytes(row.natural_key)

    def shown(data: str, pii: bytes) -> dict[str, Any]:
        values = _values(hub, row.record_type, key, data, bytes(pii))
        return shown_values(schema, values, reveal=reveal)

    return {
        **_summary(row),
        "row_ref": row.row_ref,
        "masked": not reveal,
        "values": shown(row.data, row.pii),
        "history": [
            {
                "version": old.version,
                "status": old.status,
                "batch_id": old.batch_id,
                "row_ref": old.row_ref,
                "replaced_at": old.replaced_at,
                "values": shown(old.data, old.pii),
            }
            for old in history
        ],
        "deliveries": [
            {
                "id": message.id,
                "connector": message.connector,
                "kind": message.kind,
                "step": message.step,
                "record_version": message.record_version,
                "correction": bool(message.correction),
                "status": message.status,
                "attempts": message.attempts,
                "last_code": message.last_code,
                "last_error": message.last_error,
                "next_attempt_at": message.next_attempt_at,
                "created_at": message.created_at,
                "updated_at": message.updated_at,
                "done_at": message.done_at,
            }
            for message in deliveries
        ],
    }


async def get_record(request: Request) -> Response:
    caller = await authorize(request, "records:read")
    hub = hub_of(request)
    record_id = path_id(request, "record_id", "record")
    found = await run_in_threadpool(_detail, hub, record_id)
    if found is None:
        raise ApiError(404, "not_found", f"record {record_id} does not exist")
    row, history, deliveries = found
    await guard_region(request, caller, row.kode_wilayah)
    reveal = caller.may("pii:read")
    body = await run_in_threadpool(_record_body, hub, row, history, deliveries, reveal)
    return JSONResponse(body)


async def get_record_trace(request: Request) -> Response:
    """The chain of custody of one record: the same checks and masking as `get_record`."""
    from hub.custody import trace_record

    caller = await authorize(request, "records:read")
    hub = hub_of(request)
    record_id = path_id(request, "record_id", "record")
    region = await run_in_threadpool(_region_of, hub, record_id)
    if region is None:
        raise ApiError(404, "not_found", f"record {record_id} does not exist")
    await guard_region(request, caller, region)
    reveal = caller.may("pii:read")
    body = await run_in_threadpool(lambda: trace_record(hub, record_id, reveal=reveal))
    if body is None:
        raise ApiError(404, "not_found", f"record {record_id} does not exist")
    return JSONResponse(body)


# ------------------------------------------------------------------ approval


def _region_of(hub: Hub, record_id: int) -> str | None:
    with hub.engine.connect() as conn:
        kode: str | None = conn.execute(
            sa.select(records.c.kode_wilayah).where(records.c.id == record_id)
        ).scalar_one_or_none()
    return kode


def _text(body: Any, name: str, *, required: bool) -> str | None:
    """`note` or `reason` of an approval body: plain text without a NIK in it."""
    value = body.get(name) if isinstance(body, dict) else None
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ApiError(422, "invalid", f"{name} is required", {"field": name})
        return None
    if not isinstance(value, str) or len(value) > TEXT_MAX or has_control(value):
        raise ApiError(
            422,
            "invalid",
            f"{name} must be text of at most {TEXT_MAX} characters, without control characters",
            {"field": name},
        )
    if holds_nik(value):
        raise ApiError(
            422,
            "invalid",
            f"{name} must not contain a NIK or KK number (it is kept in the audit trail)",
            {"field": name},
        )
    return value.strip()


def _where(request: Request) -> str:
    """The request as the audit trail names it: method and route template, never the URL."""
    path = getattr(request.scope.get("route"), "path", None) or "?"
    return f"{request.method} {path}"


def decide(
    hub: Hub,
    caller: Principal,
    ids: Sequence[int],
    *,
    approve: bool,
    text: str | None,
    where: str,
) -> list[dict[str, Any]]:
    """Approve or reject records, one result per id; refusals outside the caller's region
    are audited (one event for the request)."""
    routes = hub.routes
    if routes is None:
        raise ApiError(409, "conflict", "no routes are configured: nothing waits for approval")
    flow = Flow(routes, hub.schemas, hub.protector, hub.messages)
    done_outcome = "approved" if approve else "rejected"
    results: dict[int, dict[str, Any]] = {}
    with hub.engine.begin() as conn:
        rows = {
            row.id: row
            for row in conn.execute(
                sa.select(records.c.id, records.c.kode_wilayah, records.c.status).where(
                    records.c.id.in_(ids)
                )
            )
        }
        allowed: list[int] = []
        refused: list[Any] = []
        for record_id in ids:
            row = rows.get(record_id)
            if row is None:
                results[record_id] = {"id": record_id, "outcome": "not_found"}
            elif not caller.covers(row.kode_wilayah):
                results[record_id] = {"id": record_id, "outcome": "forbidden"}
                refused.append(row)
            else:
                allowed.append(record_id)
        if refused:
            AuditLog.record(
                conn,
                actor=caller.subject,
                action="access.denied",
                entity_type="api",
                entity_id=where[:64],
                details={
                    "reason": "wilayah",
                    "role": caller.role,
                    "own": caller.wilayah,
                    "wilayah": sorted({row.kode_wilayah for row in refused}),
                    "records": [row.id for row in refused],
                },
            )
        if allowed:
            if approve:
                decision = flow.approve(conn, allowed, actor=caller.subject, note=text)
            else:
                decision = flow.reject(conn, allowed, actor=caller.subject, reason=text or "")
            now = {
                row.id: row.status
                for row in conn.execute(
                    sa.select(records.c.id, records.c.status).where(records.c.id.in_(allowed))
                )
            }
            for record_id in allowed:
                skipped = decision.skipped.get(record_id)
                results[record_id] = {
                    "id": record_id,
                    "outcome": "skipped" if skipped else done_outcome,
                    "status": now.get(record_id),
                    **({"reason": skipped} if skipped else {}),
                }
    return [results[record_id] for record_id in ids]


async def _decide_one(request: Request, *, approve: bool) -> Response:
    caller = await authorize(request, "records:approve")
    hub = hub_of(request)
    record_id = path_id(request, "record_id", "record")
    body = await json_body(request, optional=True)
    text = _text(body, "note" if approve else "reason", required=not approve)
    kode = await run_in_threadpool(_region_of, hub, record_id)
    if kode is None:
        raise ApiError(404, "not_found", f"record {record_id} does not exist")
    await guard_region(request, caller, kode)
    where = _where(request)
    [result] = await run_in_threadpool(
        lambda: decide(hub, caller, [record_id], approve=approve, text=text, where=where)
    )
    if result["outcome"] == "skipped":
        raise ApiError(
            409,
            "conflict",
            f"record {record_id} is not waiting for approval ({result['reason']})",
            {"status": result["status"]},
        )
    return JSONResponse({"id": record_id, "outcome": result["outcome"], "status": result["status"]})


async def _decide_many(request: Request, *, approve: bool) -> Response:
    caller = await authorize(request, "records:approve")
    hub = hub_of(request)
    body = await json_body(request)
    ids = body.get("ids") if isinstance(body, dict) else None
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= BULK_MAX
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in ids)
    ):
        raise ApiError(
            422, "invalid", f"ids must be a list of 1 to {BULK_MAX} record ids", {"field": "ids"}
        )
    text = _text(body, "note" if approve else "reason", required=not approve)
    unique = list(dict.fromkeys(ids))
    where = _where(request)
    results = await run_in_threadpool(
        lambda: decide(hub, caller, unique, approve=approve, text=text, where=where)
    )
    done = "approved" if approve else "rejected"
    counts = {
        outcome: sum(1 for r in results if r["outcome"] == outcome)
        for outcome in (done, "skipped", "not_found", "forbidden")
    }
    status = 200 if counts[done] == len(results) else 207
    return JSONResponse({"counts": counts, "results": results}, status)


async def approve_record(request: Request) -> Response:
    return await _decide_one(request, approve=True)


async def reject_record(request: Request) -> Response:
    return await _decide_one(request, approve=False)


async def approve_records(request: Request) -> Response:
    return await _decide_many(request, approve=True)


async def reject_records(request: Request) -> Response:
    return await _decide_many(request, approve=False)


routes: list[BaseRoute] = [
    Route("/records", list_records, methods=["GET"], name="records:list"),
    Route("/records/approve", approve_records, methods=["POST"], name="records:approve-many"),
    Route("/records/reject", reject_records, methods=["POST"], name="records:reject-many"),
    # `{record_id}`, not `{record_id:int}`: GET /records/<not a number> is a 404 of this
    # route, not a 405 of POST /records/{record_type}.
    Route("/records/{record_id}", get_record, methods=["GET"], name="records:get"),
    Route("/records/{record_id}/trace", get_record_trace, methods=["GET"], name="records:trace"),
    Route(
        "/records/{record_id:int}/approve",
        approve_record,
        methods=["POST"],
        name="records:approve",
    ),
    Route(
        "/records/{record_id:int}/reject", reject_record, methods=["POST"], name="records:reject"
    ),
    Route("/records/{record_type}", submit_records, methods=["POST"], name="records:submit"),
    Route("/validate/{record_type}", validate_records, methods=["POST"], name="records:validate"),
    *verify.routes,
]


# ------------------------------------------------------------------ OpenAPI

_ERROR: Final = {"$ref": "#/components/schemas/Error"}
_TYPES: Final = ["kelahiran", "kematian", "pindah", "datang"]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_AUTH: Final = {
    "401": _error("No valid bearer token"),
    "403": _error("Scope missing, or data outside the caller's region (audited)"),
}
_RECORD_ID: Final = {
    "name": "record_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_RECORD_TYPE: Final = {
    "name": "record_type",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": _TYPES},
}
_ISSUE: Final = {
    "type": "object",
    "required": ["code", "severity", "message"],
    "properties": {
        "field": {"type": ["string", "null"]},
        "code": {"type": "string"},
        "severity": {"enum": ["error", "warning"]},
        "message": {"type": "string", "description": "in Indonesian, for the operator"},
    },
}
_SUBMISSION: Final = {
    "type": "object",
    "required": ["type", "dry_run", "batch_id", "counts", "routed", "results"],
    "properties": {
        "type": {"type": "string"},
        "dry_run": {"type": "boolean"},
        "batch_id": {"type": ["integer", "null"]},
        "counts": {
            "type": "object",
            "properties": {
                k: {"type": "integer"} for k in ("items", "valid", "invalid", "duplicates")
            },
        },
        "routed": {"type": "object", "additionalProperties": {"type": "integer"}},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "outcome", "issues"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "outcome": {"enum": ["valid", "invalid", "duplicate"]},
                    "record_id": {"type": "integer"},
                    "status": {"type": "string"},
                    "issues": {"type": "array", "items": _ISSUE},
                },
            },
        },
    },
}
_RECORD_INPUT: Final = {
    "type": "object",
    "description": "canonical field names of the record type's schema "
    "(GET /api/v1/schemas); values as an operator would write them",
    "additionalProperties": {"type": ["string", "number", "null"]},
}
_SUMMARY: Final = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "type": {"type": "string"},
        "schema_version": {"type": "integer"},
        "status": {"enum": list(STATUSES)},
        "version": {"type": "integer"},
        "kode_wilayah": {"type": "string"},
        "event_date": {"type": ["string", "null"], "format": "date"},
        "route": {"type": ["string", "null"]},
        "step": {"type": ["integer", "null"]},
        "flags": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": ["string", "null"]},
        "batch_id": {"type": ["integer", "null"]},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
    },
}
_DETAIL: Final = {
    "allOf": [
        _SUMMARY,
        {
            "type": "object",
            "properties": {
                "row_ref": {"type": "string"},
                "masked": {"type": "boolean"},
                "values": {"type": "object", "description": "PII masked unless pii:read"},
                "history": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "version": {"type": "integer"},
                            "status": {"type": "string"},
                            "batch_id": {"type": ["integer", "null"]},
                            "row_ref": {"type": "string"},
                            "replaced_at": {"type": "string"},
                            "values": {"type": "object"},
                        },
                    },
                },
                "deliveries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "connector": {"type": "string"},
                            "kind": {"enum": ["verify", "deliver"]},
                            "step": {"type": "integer"},
                            "record_version": {"type": "integer"},
                            "correction": {"type": "boolean"},
                            "status": {
                                "enum": ["queued", "in_flight", "done", "dead", "superseded"]
                            },
                            "attempts": {"type": "integer"},
                            "last_code": {"type": ["string", "null"]},
                            "last_error": {"type": ["string", "null"]},
                            "next_attempt_at": {"type": "string"},
                            "created_at": {"type": "string"},
                            "updated_at": {"type": "string"},
                            "done_at": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        },
    ]
}
_DECISION: Final = {
    "type": "object",
    "required": ["id", "outcome"],
    "properties": {
        "id": {"type": "integer"},
        "outcome": {"enum": ["approved", "rejected", "skipped", "not_found", "forbidden"]},
        "status": {"type": ["string", "null"]},
        "reason": {"type": "string", "description": "why a record was skipped"},
    },
}
_TEXT: Final = {"type": "string", "minLength": 1, "maxLength": TEXT_MAX}


def _submit_operation(dry_run: bool) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [_RECORD_TYPE]
    if not dry_run:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": "same key and body: the first answer again; other body: 422",
            }
        )
    return {
        "operationId": "validateRecords" if dry_run else "submitRecords",
        "summary": "Check records without storing them"
        if dry_run
        else "Submit one record or a list; partial success is reported per item",
        "tags": ["records"],
        "security": [{"bearer": ["records:write"]}],
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _RECORD_INPUT,
                            {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_ITEMS,
                                "items": _RECORD_INPUT,
                            },
                        ]
                    }
                }
            },
        },
        "responses": {
            "200": _json(_SUBMISSION, "Every item valid or a duplicate of a held record"),
            "207": _json(_SUBMISSION, "Some items invalid, the others accepted"),
            "400": _error("Not JSON, or a bad Idempotency-Key"),
            **_AUTH,
            "404": _error("Unknown record type"),
            "409": _error("A request with this Idempotency-Key is still running"),
            "413": _error("The body is larger than the limit"),
            "415": _error("Not application/json"),
            "422": _error(
                "No item accepted (details: the per-item results), not an object or list, "
                "too many items, or idempotency_mismatch"
            ),
        },
    }


def _decide_operation(approve: bool, bulk: bool) -> dict[str, Any]:
    word = "approve" if approve else "reject"
    text_name = "note" if approve else "reason"
    body_schema: dict[str, Any] = {
        "type": "object",
        "properties": {text_name: _TEXT},
        "required": [] if approve else [text_name],
    }
    if bulk:
        body_schema["properties"]["ids"] = {
            "type": "array",
            "minItems": 1,
            "maxItems": BULK_MAX,
            "items": {"type": "integer", "minimum": 1},
        }
        body_schema["required"] = ["ids", *body_schema["required"]]
        result: dict[str, Any] = {
            "type": "object",
            "properties": {
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "results": {"type": "array", "items": _DECISION},
            },
        }
        responses = {
            "200": _json(result, f"Every record {word}d"),
            "207": _json(result, "Some records skipped, unknown or outside the region"),
        }
    else:
        responses = {"200": _json(_DECISION, f"The record was {word}d")}
    return {
        "operationId": f"{word}Records" if bulk else f"{word}Record",
        "summary": f"{word.capitalize()} "
        + ("records waiting for approval, per id" if bulk else "a record waiting for approval"),
        "tags": ["records"],
        "security": [{"bearer": ["records:approve"]}],
        "parameters": [] if bulk else [_RECORD_ID],
        "requestBody": {
            "required": not approve or bulk,
            "content": {"application/json": {"schema": body_schema}},
        },
        "responses": {
            **responses,
            "400": _error("Not JSON"),
            **_AUTH,
            **({} if bulk else {"404": _error("No such record")}),
            "409": _error(
                "No routes configured" + ("" if bulk else ", or not waiting for approval")
            ),
            "415": _error("Not application/json"),
            "422": _error(f"{'ids missing or bad, ' if bulk else ''}{text_name} missing or bad"),
        },
    }


openapi_paths: dict[str, Any] = {
    "/api/v1/records": {
        "get": {
            "operationId": "listRecords",
            "summary": "Records in the caller's region, oldest first, a page at a time",
            "tags": ["records"],
            "security": [{"bearer": ["records:read"]}],
            "parameters": [
                {"name": "type", "in": "query", "schema": {"enum": _TYPES}},
                {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                {
                    "name": "wilayah",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "region prefix, e.g. 32.73.01 (narrowed to the caller's)",
                },
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": RECORDS_PAGE_MAX,
                        "default": RECORDS_PAGE,
                    },
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["items", "next_cursor"],
                        "properties": {
                            "items": {"type": "array", "items": _SUMMARY},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    "One page of records (no personal data)",
                ),
                "400": _error("Bad filter, limit or cursor"),
                **_AUTH,
            },
        }
    },
    "/api/v1/records/{record_id}": {
        "get": {
            "operationId": "getRecord",
            "summary": "A record with its history and deliveries; PII masked without pii:read",
            "tags": ["records"],
            "security": [{"bearer": ["records:read"]}],
            "parameters": [_RECORD_ID],
            "responses": {
                "200": _json(_DETAIL, "The record"),
                **_AUTH,
                "404": _error("No such record"),
            },
        }
    },
    "/api/v1/records/{record_id}/trace": {
        "get": {
            "operationId": "getRecordTrace",
            "summary": "The chain of custody of a record: source file, sheet, row and cells, "
            "normalised values, issues, Dukcapil answers, approval, delivery attempts, receipts, "
            "each with time, actor and audit hash; and whether the audit chain verifies. PII "
            "masked without pii:read",
            "tags": ["records"],
            "security": [{"bearer": ["records:read"]}],
            "parameters": [_RECORD_ID],
            "responses": {
                "200": _json(
                    {"type": "object", "required": ["record", "versions", "steps", "chain"]},
                    "The trace",
                ),
                **_AUTH,
                "404": _error("No such record"),
            },
        }
    },
    "/api/v1/records/{record_type}": {"post": _submit_operation(dry_run=False)},
    "/api/v1/validate/{record_type}": {"post": _submit_operation(dry_run=True)},
    "/api/v1/records/{record_id}/approve": {"post": _decide_operation(True, bulk=False)},
    "/api/v1/records/{record_id}/reject": {"post": _decide_operation(False, bulk=False)},
    "/api/v1/records/approve": {"post": _decide_operation(True, bulk=True)},
    "/api/v1/records/reject": {"post": _decide_operation(False, bulk=True)},
    **verify.openapi_paths,
}
