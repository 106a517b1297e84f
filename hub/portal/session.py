"""Sessions, CSRF and language for the portal's pages.

**Session.** Logging in sets `hub_sesi`: the hub's own signed access token (ES256 JWT from
`hub.api.tokens`, at most an hour), in a cookie that is `HttpOnly`, `SameSite=Strict`, `Path=/`
and `Secure` over HTTPS. `PortalSession` turns it into the request's `Authorization: Bearer`
header for the portal's routes only, so every page is checked by `hub.api.access` exactly as
an API call is (token, account still active, scope, region, audited refusals); the API under
`/api/v1` never accepts the cookie, so it cannot be driven by a forged cross-site request.

**CSRF.** Every browser gets a random `hub_csrf` cookie (`HttpOnly`, `SameSite=Strict`). Each
form carries `csrf_token`, a keyed digest of that cookie (the hub's data key, domain
`portal.csrf`): a POST whose token is missing or does not match the cookie is refused (403)
before anything else runs. The cookie is renewed at login and logout.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any, Final

from starlette.requests import Request, cookie_parser

from hub.api.access import hub_of
from hub.api.errors import ApiError
from hub.portal.i18n import LANGUAGE_COOKIE, Language, choose

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE: Final = "hub_sesi"
CSRF_COOKIE: Final = "hub_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "x-csrf-token"
_CSRF_VALUE: Final = re.compile(r"[A-Za-z0-9_-]{32,64}")
_TOKEN_VALUE: Final = re.compile(r"[A-Za-z0-9_.-]{20,4096}")
_STATE_CSRF: Final = "portal_csrf_cookie"
_STATE_LANGUAGE: Final = "portal_language"
_STATE_REMEMBER_LANGUAGE: Final = "portal_remember_language"


def secure_cookies(scope: Scope) -> bool:
    """Cookies are `Secure` over HTTPS, or always with `HUB_PORTAL_SECURE_COOKIES=1`
    (behind a proxy that terminates TLS)."""
    return scope.get("scheme") == "https" or os.environ.get("HUB_PORTAL_SECURE_COOKIES") == "1"


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None) -> bytes:
    """A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/ (and Secure when asked)."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    if secure:
        morsel["secure"] = True
    if max_age is not None:
        morsel["max-age"] = max_age
    return morsel.OutputString().encode("latin-1")


class PortalSession:
    """Wraps the portal's routes: session cookie -> bearer token, CSRF cookie, language."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b"; ".join(v for n, v in scope.get("headers", []) if n == b"cookie")
        cookies = cookie_parser(raw.decode("latin-1"))
        headers = [(n, v) for n, v in scope.get("headers", []) if n != b"authorization"]
        token = cookies.get(SESSION_COOKIE, "")
        if _TOKEN_VALUE.fullmatch(token):
            headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
        known = cookies.get(CSRF_COOKIE, "")
        state: dict[str, Any] = scope.setdefault("state", {})
        state[_STATE_CSRF] = known if _CSRF_VALUE.fullmatch(known) else new_csrf_cookie()
        request = Request(scope)
        asked = request.query_params.get("bahasa")
        header = dict(scope.get("headers", [])).get(b"accept-language", b"").decode("latin-1")
        language = choose(asked, cookies.get(LANGUAGE_COOKIE), header)
        state[_STATE_LANGUAGE] = language
        remember = asked in ("id", "en") and cookies.get(LANGUAGE_COOKIE) != asked
        secure = secure_cookies(scope)

        async def with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = []
                if state[_STATE_CSRF] != known:
                    extra.append(cookie_header(CSRF_COOKIE, state[_STATE_CSRF], secure=secure))
                if remember:
                    extra.append(
                        cookie_header(LANGUAGE_COOKIE, language, secure=secure, max_age=31536000)
                    )
                message["headers"] = [
                    *message.get("headers", []),
                    *((b"set-cookie", value) for value in extra),
                ]
            await send(message)

        await self.app({**scope, "headers": headers}, receive, with_cookies)


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def language_of(request: Request) -> Language:
    language: Language = request.scope.get("state", {}).get(_STATE_LANGUAGE, "id")
    return language


def csrf_token(request: Request) -> str:
    """The token the forms of this page carry (bound to the browser's CSRF cookie)."""
    cookie: str = request.scope.setdefault("state", {}).get(_STATE_CSRF) or ""
    digest = hub_of(request).protector.digest(cookie.encode(), "portal.csrf")
    return digest.hex()


def renew_csrf(request: Request) -> None:
    """A new CSRF cookie (at login and logout); set on the response by `PortalSession`."""
    request.scope.setdefault("state", {})[_STATE_CSRF] = new_csrf_cookie()


def check_csrf(request: Request, given: str | None) -> None:
    """403 `csrf` unless `given` is this browser's token."""
    expected = csrf_token(request)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(403, "csrf", "the form's CSRF token is missing or not valid")
