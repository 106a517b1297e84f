"""Pages from templates, error pages, and calls into the API's own handlers.

A page asks the API handler that answers the same question (`call_json`), with the page's
request (same caller, same cookie-turned-token, same query), so roles, scopes, regions,
masking and audited refusals are those of the API. An `ApiError` becomes a page: 401 sends the
browser to the login page, 403 shows the refusal, anything else its message.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.api.access import authenticated
from hub.api.errors import ApiError
from hub.api.principal import Principal
from hub.portal.i18n import text
from hub.portal.session import SESSION_COOKIE, csrf_token, language_of, secure_cookies

TEMPLATES: Final = Path(__file__).parent / "templates"
Endpoint = Callable[[Request], Awaitable[Response]]

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

#: (path, text key, scope needed): the menu, shown by what the caller may do.
NAVIGATION: Final = (
    ("/unggah", "nav.upload", "batches:write"),
    ("/persetujuan", "nav.approvals", "records:approve"),
    ("/pengiriman", "nav.deliveries", "deliveries:read"),
    ("/statistik", "nav.stats", "stats:read"),
    ("/audit", "nav.audit", "audit:read"),
)


def caller_or_none(request: Request) -> Principal | None:
    """The logged-in caller, or None (no session or an invalid one); never raises."""
    try:
        return authenticated(request)
    except ApiError:
        return None


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    language = language_of(request)
    caller = principal if principal is not None else caller_or_none(request)

    def t(key: str, **values: object) -> str:
        return text(key, language, **values)

    nav = [
        {"path": path, "label": t(key), "current": request.url.path.startswith(path)}
        for path, key, scope in NAVIGATION
        if caller is not None and caller.may(scope)
    ]
    page = environment.get_template(template).render(
        {
            "t": t,
            "lang": language,
            "other_lang": "en" if language == "id" else "id",
            "caller": caller,
            "nav": nav,
            "csrf": csrf_token(request),
            "path": request.url.path,
            "query": lambda **kw: _query(request, kw),
            **(context or {}),
        }
    )
    return HTMLResponse(page, status_code=status)


def _query(request: Request, changes: Mapping[str, Any]) -> str:
    """This page's query string with `changes` (None removes a parameter)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None or value == "":
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + urlencode(params) if params else request.url.path


def error_page(request: Request, exc: ApiError) -> Response:
    language = language_of(request)
    if exc.status == 401:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        had_session = SESSION_COOKIE in request.cookies
        target = f"/masuk?lanjut={quote(back, safe='/')}" + ("&habis=1" if had_session else "")
        response: Response = RedirectResponse(target, status_code=303)
        if had_session:
            response.delete_cookie(
                SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                secure=secure_cookies(request.scope),
            )  # fmt: skip
        return response
    if exc.code == "csrf":
        title, message = text("error.403", language), text("error.csrf", language)
    elif exc.status == 403:
        title, message = text("error.403", language), text("error.403.text", language)
    elif exc.status == 404:
        title, message = text("error.404", language), text("error.404.text", language)
    else:
        title, message = text("error.title", language), exc.message
    return render(
        request, "error.html", {"title": title, "message": message, "code": exc.status},
        status=exc.status,
    )  # fmt: skip


def page(handler: Endpoint) -> Endpoint:
    """A portal page: `ApiError` raised by it (or by the API handlers it calls) becomes a page."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_page(request, exc)

    return endpoint


def derived(
    request: Request,
    *,
    query: Mapping[str, Any] | None = None,
    path_params: Mapping[str, Any] | None = None,
) -> Request:
    """The same request (caller, state, route) with another query or other path values."""
    scope = dict(request.scope)
    if query is not None:
        items = {k: str(v) for k, v in query.items() if v is not None and v != ""}
        scope["query_string"] = urlencode(items).encode()
    if path_params is not None:
        scope["path_params"] = {**scope.get("path_params", {}), **path_params}
    return Request(scope, request.receive)


async def call_json(
    request: Request,
    handler: Endpoint,
    *,
    query: Mapping[str, Any] | None = None,
    path_params: Mapping[str, Any] | None = None,
) -> Any:
    """What the API handler answers to this request, as JSON (its errors raise `ApiError`)."""
    response = await handler(derived(request, query=query, path_params=path_params))
    return orjson.loads(bytes(response.body))
