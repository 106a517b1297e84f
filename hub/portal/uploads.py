"""Unggah laporan, Hasil unggahan, Unggah ulang.

The upload itself is `POST /api/v1/batches`'s handler (`hub.api.batches.upload_batch`),
reached through `POST /unggah` with the session and a CSRF header; its progress is
`GET /api/v1/batches/{id}`'s handler, polled by `upload.js`. The result page reads the
batch and its issues through the same handlers, and the annotated workbook is
`GET /api/v1/batches/{id}/report.xlsx`'s.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Final

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from hub.api import batches as api_batches
from hub.api.access import hub_of
from hub.api.principal import Principal
from hub.api.support import authorize, within
from hub.context import Hub
from hub.portal.render import call_json, page, render
from hub.portal.session import CSRF_HEADER, check_csrf
from hub.store.tables import batches, records

#: Issues read for one result page (pages of the API's largest size).
MAX_ISSUES: Final = 10_000
#: Issues shown at once.
SHOWN: Final = 200
RECENT: Final = 10
_ROW: Final = re.compile(r"(\d+)$")
_CODE: Final = re.compile(r"[a-z_]{1,40}")


def _recent(hub: Hub, caller: Principal) -> list[Any]:
    """The latest batches of the caller's region (`within`, as the API's record listing)."""
    query = (
        sa.select(
            batches.c.id,
            batches.c.file_name,
            batches.c.record_type,
            batches.c.status,
            batches.c.rows,
            batches.c.invalid,
            batches.c.created_at,
        )  # fmt: skip
        .where(within(batches.c.kelurahan, caller.wilayah))
        .order_by(batches.c.id.desc())
        .limit(RECENT)
    )
    with hub.engine.connect() as conn:
        return list(conn.execute(query))


def _upload_page(
    request: Request, caller: Principal, previous: Any | None, recent: list[Any]
) -> Response:
    return render(
        request,
        "upload.html",
        {
            "types": hub_of(request).schemas.types(),
            "previous": previous,
            "recent": recent,
            "chosen": previous["type"] if previous else request.query_params.get("jenis"),
        },
        principal=caller,
    )


@page
async def upload_page(request: Request) -> Response:
    caller = await authorize(request, "batches:write")
    recent = await run_in_threadpool(_recent, hub_of(request), caller)
    return _upload_page(request, caller, None, recent)


@page
async def reupload_page(request: Request) -> Response:
    caller = await authorize(request, "batches:write")
    previous = await call_json(request, api_batches.get_batch)
    return _upload_page(request, caller, previous, [])


async def upload(request: Request) -> Response:
    """`POST /unggah` (XHR): the API's upload, after the CSRF check."""
    check_csrf(request, request.headers.get(CSRF_HEADER))
    return await api_batches.upload_batch(request)


async def status(request: Request) -> Response:
    """`GET /hasil/{id}/status` (polled): the API's batch status."""
    return await api_batches.get_batch(request)


@page
async def report(request: Request) -> Response:
    return await api_batches.batch_report(request)


async def _all_issues(request: Request) -> tuple[list[dict[str, Any]], bool]:
    """The batch's issues through the API's paged handler, up to `MAX_ISSUES`."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    limit = api_batches.ISSUES_PAGE_MAX
    while len(items) < MAX_ISSUES:
        answer = await call_json(
            request, api_batches.list_issues, query={"limit": limit, "cursor": cursor}
        )
        items += answer["items"]
        cursor = answer["next_cursor"]
        if cursor is None:
            return items, False
    return items, True


def _row_number(row_ref: str) -> int | None:
    found = _ROW.search(row_ref)
    return int(found.group(1)) if found else None


def _accepted_rows(hub: Hub, batch_id: int) -> list[tuple[int | None, int]]:
    """(row, version) of the records this batch stored: version 1 new, above 1 corrected."""
    with hub.engine.connect() as conn:
        found = conn.execute(
            sa.select(records.c.row_ref, records.c.version).where(records.c.batch_id == batch_id)
        ).all()
    return sorted(((_row_number(r.row_ref), r.version) for r in found), key=lambda x: x[0] or 0)


@page
async def result_page(request: Request) -> Response:
    batch = await call_json(request, api_batches.get_batch)
    context: dict[str, Any] = {"batch": batch, "issues": [], "codes": [], "truncated": False}
    if batch["status"] == "done":
        issues, truncated = await _all_issues(request)
        code = request.query_params.get("kode")
        code = code if code and _CODE.fullmatch(code) else None
        counts = Counter(issue["code"] for issue in issues)
        chosen = [issue for issue in issues if code is None or issue["code"] == code]
        start = _offset(request.query_params.get("mulai"), len(chosen))
        accepted = await run_in_threadpool(_accepted_rows, hub_of(request), batch["batch_id"])
        already = sorted({i["row"] for i in issues if i["code"] == "duplicate"})
        context.update(
            issues=chosen[start : start + SHOWN],
            total=len(chosen),
            start=start,
            next_start=start + SHOWN if start + SHOWN < len(chosen) else None,
            codes=sorted(counts.items()),
            code=code,
            truncated=truncated,
            new_rows=[row for row, version in accepted if version == 1],
            corrected_rows=[row for row, version in accepted if version > 1],
            already_rows=already,
            still=batch["invalid"],
        )
        previous_id = request.query_params.get("sebelumnya")
        if previous_id and previous_id.isdigit() and previous_id != str(batch["batch_id"]):
            context["previous"] = await call_json(
                request, api_batches.get_batch, path_params={"batch_id": int(previous_id)}
            )
    return render(request, "result.html", context)


def _offset(text: str | None, total: int) -> int:
    if text is None or not text.isdigit():
        return 0
    value = int(text)
    if value >= total:
        return 0
    return value - value % SHOWN
