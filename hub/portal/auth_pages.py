"""Masuk (login), Keluar (logout) and the start page.

The login checks the password with `hub.api.accounts.login_user` (argon2id, lock-out after
`MAX_FAILURES`, every attempt audited) and issues the session with `TokenService.issue`:
the functions `POST /api/v1/login` uses.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.api.access import hub_of
from hub.api.accounts import MAX_PASSWORD, AccountLocked, AuthenticationFailed, login_user
from hub.api.errors import ApiError
from hub.api.principal import Principal
from hub.api.tokens import MAX_TTL, TokenService
from hub.portal.i18n import text
from hub.portal.render import NAVIGATION, caller_or_none, page, render
from hub.portal.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    check_csrf,
    cookie_header,
    language_of,
    renew_csrf,
    secure_cookies,
)

#: A session lasts as long as the longest token the hub issues.
SESSION_TTL: Final = MAX_TTL
_MAX_USERNAME: Final = 100


def home_of(principal: Principal) -> str:
    """The first page of the menu the caller may open."""
    for path, _, scope in NAVIGATION:
        if principal.may(scope):
            return path
    return "/masuk"


def _next(target: str | None) -> str | None:
    """A `lanjut` target on this site only (a path, never `//host` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


async def home(request: Request) -> Response:
    caller = caller_or_none(request)
    return RedirectResponse(home_of(caller) if caller else "/masuk", status_code=303)


def _login_page(request: Request, message: str | None, status: int, kind: str) -> Response:
    return render(
        request,
        "login.html",
        {
            "message": message,
            "kind": kind,
            "next": _next(request.query_params.get("lanjut")) or "",
        },
        status=status,
    )


@page
async def login_form(request: Request) -> Response:
    caller = caller_or_none(request)
    if caller is not None:
        return RedirectResponse(home_of(caller), status_code=303)
    language = language_of(request)
    if request.query_params.get("keluar"):
        return _login_page(request, text("logged_out", language), 200, "info")
    if request.query_params.get("habis"):
        return _login_page(request, text("login.expired", language), 200, "info")
    return _login_page(request, None, 200, "info")


def _clock(request: Request) -> dt.datetime | None:
    clock: Callable[[], dt.datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else None


@page
async def login_submit(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=10) as form:
        check_csrf(request, _field(form.get(CSRF_FIELD)))
        username = _field(form.get("username")).strip()
        password = _field(form.get("password"))
        target = _next(_field(form.get("lanjut")))
    language = language_of(request)
    if not username or not password:
        return _login_page(request, text("login.missing", language), 422, "error")
    if len(username) > _MAX_USERNAME or len(password) > MAX_PASSWORD:
        return _login_page(request, text("login.wrong", language), 401, "error")
    engine, tokens = hub_of(request).engine, request.app.state.tokens
    now = _clock(request)

    def run() -> tuple[Principal, str]:
        principal = login_user(engine, username, password, now)
        return principal, _issue(tokens, principal)

    try:
        principal, token = await run_in_threadpool(run)
    except AccountLocked as exc:
        minutes = max(1, math.ceil(exc.retry_after / 60))
        message = text("login.locked", language, minutes=minutes)
        response = _login_page(request, message, 429, "error")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AuthenticationFailed:
        return _login_page(request, text("login.wrong", language), 401, "error")
    renew_csrf(request)
    response = RedirectResponse(target or home_of(principal), status_code=303)
    response.raw_headers.append(
        (
            b"set-cookie",
            cookie_header(
                SESSION_COOKIE, token, secure=secure_cookies(request.scope), max_age=SESSION_TTL
            ),
        )
    )
    return response


def _issue(tokens: TokenService, principal: Principal) -> str:
    return tokens.issue(principal, SESSION_TTL)


def _field(value: object) -> str:
    return value if isinstance(value, str) else ""


@page
async def not_found(request: Request) -> Response:
    """Any other path: the portal's 404 page."""
    raise ApiError(404, "not_found", "no such page")


@page
async def logout(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=5) as form:
        check_csrf(request, _field(form.get(CSRF_FIELD)))
    renew_csrf(request)
    response = RedirectResponse("/masuk?keluar=1", status_code=303)
    response.raw_headers.append(
        (
            b"set-cookie",
            cookie_header(SESSION_COOKIE, "", secure=secure_cookies(request.scope), max_age=0),
        )
    )
    return response
