"""Pengiriman (admins) and Jejak audit (auditors).

Connector figures come from `hub.outbox.status` (what `hub outbox status` prints); dead
letters, replay and the audit search are the handlers of `GET /api/v1/deadletters`,
`POST /api/v1/deadletters/{id}/replay`, `GET /api/v1/audit` and `/audit/verify`.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub import outbox as ops
from hub.api import operations as api_operations
from hub.api.access import hub_of
from hub.api.errors import ApiError
from hub.api.support import authorize
from hub.context import Hub
from hub.portal.render import call_json, page, render
from hub.portal.session import CSRF_FIELD, check_csrf

DEAD_PAGE: Final = 100
AUDIT_PAGE: Final = 50
_CONNECTOR: Final = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _status(hub: Hub) -> list[dict[str, Any]]:
    names = list(hub.routes.connectors) if hub.routes is not None else []
    with hub.engine.connect() as conn:
        return [state.as_dict() for state in ops.status(conn, names)]


@page
async def deliveries_page(request: Request) -> Response:
    caller = await authorize(request, "deliveries:read")
    hub = hub_of(request)
    connector = request.query_params.get("konektor")
    connector = connector if connector and _CONNECTOR.fullmatch(connector) else None
    states = await run_in_threadpool(_status, hub)
    dead = await call_json(
        request,
        api_operations.dead_letters,
        query={
            "limit": DEAD_PAGE,
            "connector": connector,
            "cursor": request.query_params.get("cursor"),
        },
    )
    replayed = request.query_params.get("diulang")
    return render(
        request,
        "deliveries.html",
        {
            "states": states,
            "dead": dead["items"],
            "next_cursor": dead["next_cursor"],
            "connector": connector,
            "replayed": replayed if replayed and replayed.isdigit() else None,
            "may_replay": caller.may("deliveries:write"),
        },
        principal=caller,
    )


@page
async def replay(request: Request) -> Response:
    """`POST /pengiriman/{id}/ulang`: the API's replay of one dead letter."""
    async with request.form(max_files=0, max_fields=5) as form:
        token = form.get(CSRF_FIELD)
        check_csrf(request, token if isinstance(token, str) else None)
    answer = await call_json(request, api_operations.replay)
    ids = ",".join(str(i) for i in answer["replayed"])
    return RedirectResponse(f"/pengiriman?diulang={ids.split(',')[0]}", status_code=303)


def _audit_query(request: Request) -> dict[str, Any]:
    """The API's audit filters from the search form: record number, user, dates, action."""
    params = request.query_params
    record = (params.get("rekaman") or "").strip()
    user = (params.get("pengguna") or "").strip()
    return {
        "entity": f"record:{record}" if record else None,
        "actor": (user if ":" in user else f"user:{user}") if user else None,
        "from": (params.get("dari") or "").strip() or None,
        "to": (params.get("sampai") or "").strip() or None,
        "action": (params.get("tindakan") or "").strip() or None,
        "cursor": params.get("cursor"),
        "limit": AUDIT_PAGE,
    }


@page
async def audit_page(request: Request) -> Response:
    caller = await authorize(request, "audit:read")
    chain = await call_json(request, api_operations.audit_verify)
    problem: str | None = None
    events: list[dict[str, Any]] = []
    next_cursor: str | None = None
    try:
        answer = await call_json(request, api_operations.audit, query=_audit_query(request))
    except ApiError as exc:
        if exc.status != 400:
            raise
        problem = exc.message
    else:
        events = [
            {**event, "details_text": orjson.dumps(event["details"]).decode()}
            for event in answer["items"]
        ]
        next_cursor = answer["next_cursor"]
    return render(
        request,
        "audit.html",
        {
            "chain": chain,
            "events": events,
            "next_cursor": next_cursor,
            "problem": problem,
            "form": dict(request.query_params),
        },
        principal=caller,
    )
