"""Persetujuan: the verifikator's queue, decisions one by one or in bulk, live updates.

The queue is `GET /api/v1/records?status=pending_approval`'s handler and each record's detail
`GET /api/v1/records/{id}`'s (values masked as the API masks them, Dukcapil's answers from the
record's flags and verification messages); a decision goes through `hub.api.records.decide`,
the function behind `POST /api/v1/records/approve|reject`. New records waiting in the
caller's region are announced by Server-Sent Events (`GET /persetujuan/aliran`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from hub.api import records as api_records
from hub.api.access import hub_of
from hub.api.errors import ApiError
from hub.api.support import MAX_ID, authorize, within
from hub.context import Hub
from hub.portal.render import call_json, page, render
from hub.portal.session import CSRF_FIELD, check_csrf
from hub.store.tables import records

QUEUE_PAGE: Final = 100
#: How often the live stream looks for new records, and how long one stream lasts before the
#: browser reconnects (`retry`): a stream never outlives a session by much.
STREAM_INTERVAL: Final = 1.0
STREAM_LIFETIME: Final = 60.0
RETRY_MS: Final = 2000

#: Dukcapil's response codes as the verifikator reads them.
DUKCAPIL_CODES: Final = {
    "00": ("ditemukan", "found"),
    "08": ("tidak dapat diproses", "cannot be processed"),
    "11": ("sudah meninggal", "deceased"),
    "12": ("NIK ganda", "duplicate NIK"),
    "13": ("tidak ditemukan", "not found"),
    "14": ("tidak aktif", "inactive"),
    "15": ("format salah", "bad format"),
}


def _checks(hub: Hub, detail: dict[str, Any], language: str) -> list[str]:
    """Dukcapil's answers about a record, in words: flags (`field:code`) and verify messages."""
    schema = hub.schemas.get(detail["type"], detail["schema_version"])
    shown: list[str] = []
    for flag in detail.get("flags") or []:
        field, _, code = str(flag).partition(":")
        spec = schema.fields.get(field)
        label = spec.title if spec else field
        words = DUKCAPIL_CODES.get(code, (code, code))[0 if language == "id" else 1]
        shown.append(f"{label}: {words} ({code})")
    for message in detail.get("deliveries", []):
        if message["kind"] == "verify" and message["last_code"]:
            code = message["last_code"]
            words = DUKCAPIL_CODES.get(code, (code, code))[0 if language == "id" else 1]
            shown.append(f"Dukcapil: {words} ({code})")
    return shown


def _name(hub: Hub, detail: dict[str, Any]) -> str:
    """The record's first name field (masked when the caller may not read PII)."""
    schema = hub.schemas.get(detail["type"], detail["schema_version"])
    for field, spec in schema.fields.items():
        if spec.kind == "name" and detail["values"].get(field):
            return str(detail["values"][field])
    return "—"


async def _rows(request: Request, ids: list[int]) -> list[dict[str, Any]]:
    hub = hub_of(request)
    language = request.scope.get("state", {}).get("portal_language", "id")
    rows = []
    for record_id in ids:
        detail = await call_json(
            request, api_records.get_record, path_params={"record_id": str(record_id)}
        )
        rows.append(
            {
                "id": detail["id"],
                "type": detail["type"],
                "kode_wilayah": detail["kode_wilayah"],
                "wilayah_nama": hub.regions.name_of(detail["kode_wilayah"]) or "",
                "event_date": detail["event_date"],
                "name": _name(hub, detail),
                "checks": _checks(hub, detail, language),
                "reason": detail["reason"],
                "batch_id": detail["batch_id"],
            }
        )
    return rows


@page
async def queue_page(request: Request) -> Response:
    caller = await authorize(request, "records:approve")
    listing = await call_json(
        request,
        api_records.list_records,
        query={
            "status": "pending_approval",
            "limit": QUEUE_PAGE,
            "type": request.query_params.get("jenis"),
            "cursor": request.query_params.get("cursor"),
        },
    )
    rows = await _rows(request, [item["id"] for item in listing["items"]])
    outcome = {
        key: int(request.query_params.get(key, "0") or 0)
        for key in ("disetujui", "ditolak", "dilewati")
        if request.query_params.get(key, "").isdigit()
    }
    return render(
        request,
        "approvals.html",
        {
            "rows": rows,
            "next_cursor": listing["next_cursor"],
            "types": hub_of(request).schemas.types(),
            "chosen": request.query_params.get("jenis"),
            "outcome": outcome,
            "problem": request.query_params.get("galat"),
        },
        principal=caller,
    )


@page
async def rows_fragment(request: Request) -> Response:
    """`GET /persetujuan/baris?id=..`: table rows of records now waiting (for the live list)."""
    caller = await authorize(request, "records:approve")
    wanted = [int(v) for v in request.query_params.getlist("id") if v.isdigit()][:QUEUE_PAGE]
    waiting = set(await run_in_threadpool(pending_ids, hub_of(request), caller.wilayah))
    rows = await _rows(request, [i for i in wanted if i in waiting])
    return render(request, "_approval_rows.html", {"rows": rows}, principal=caller)


def _ids(values: list[Any]) -> list[int]:
    out = []
    for value in values:
        if isinstance(value, str) and value.isdigit() and 0 < int(value) <= MAX_ID:
            out.append(int(value))
    return list(dict.fromkeys(out))


@page
async def decide(request: Request) -> Response:
    """`POST /persetujuan`: approve or reject the chosen records (or the one whose button was
    pressed), through `hub.api.records.decide`."""
    async with request.form(max_files=0, max_fields=api_records.BULK_MAX + 10) as form:
        token = form.get(CSRF_FIELD)
        check_csrf(request, token if isinstance(token, str) else None)
        action = str(form.get("aksi") or "")
        chosen = _ids(form.getlist("ids"))
        reason = form.get("alasan")
        note = form.get("catatan")
    caller = await authorize(request, "records:approve")
    verb, _, single = action.partition(":")
    if verb not in ("setujui", "tolak"):
        raise ApiError(422, "invalid", "aksi must be setujui or tolak")
    approve = verb == "setujui"
    ids = _ids([single]) if single else chosen
    if not ids:
        return RedirectResponse("/persetujuan?galat=need_ids", status_code=303)
    given = reason if not approve else note
    if not approve and (not isinstance(given, str) or not given.strip()):
        return RedirectResponse("/persetujuan?galat=need_reason", status_code=303)
    body = {("note" if approve else "reason"): given if isinstance(given, str) else None}
    text = api_records._text(body, "note" if approve else "reason", required=not approve)
    hub = hub_of(request)
    where = "POST /persetujuan"
    results = await run_in_threadpool(
        lambda: api_records.decide(hub, caller, ids, approve=approve, text=text, where=where)
    )
    done = sum(1 for r in results if r["outcome"] in ("approved", "rejected"))
    query = {
        "disetujui": done if approve else 0,
        "ditolak": 0 if approve else done,
        "dilewati": len(results) - done,
    }
    return RedirectResponse("/persetujuan?" + urlencode(query), status_code=303)


def pending_ids(hub: Hub, region: str) -> list[int]:
    """Records of `region` waiting for approval (the queue's first `QUEUE_PAGE * 5`)."""
    query = (
        sa.select(records.c.id)
        .where(records.c.status == "pending_approval", within(records.c.kode_wilayah, region))
        .order_by(records.c.id)
        .limit(QUEUE_PAGE * 5)
    )
    with hub.engine.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


async def stream(request: Request) -> Response:
    """`GET /persetujuan/aliran`: an `antrean` event with the waiting ids whenever they change."""
    caller = await authorize(request, "records:approve")
    hub = hub_of(request)
    lifetime: float = getattr(request.app.state, "portal_stream_lifetime", STREAM_LIFETIME)
    interval: float = getattr(request.app.state, "portal_stream_interval", STREAM_INTERVAL)

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        known: list[int] | None = None
        end = time.monotonic() + lifetime
        while time.monotonic() < end:
            ids = await run_in_threadpool(pending_ids, hub, caller.wilayah)
            if ids != known:
                data = orjson.dumps({"ids": ids}).decode()
                yield f"event: antrean\ndata: {data}\n\n".encode()
                known = ids
            else:
                yield b": tetap\n\n"
            await asyncio.sleep(interval)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
