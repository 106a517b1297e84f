"""Getting a token: OAuth2 client credentials for systems, a password login for people.

```
POST /oauth/token              grant_type=client_credentials (RFC 6749 §4.4), Basic or form auth
GET  /.well-known/jwks.json    the public keys that verify the hub's tokens
POST /api/v1/login             {username, password} -> a token for a person
GET  /api/v1/me                who the bearer token says the caller is
```

**Why not authlib's `AuthorizationServer`.** authlib ships server integrations for Flask and
Django only (for Starlette it has the *client*). Its `AuthorizationServer` reads the form
synchronously through an `OAuth2Request` that a Starlette integration would have to fake
after an `await request.form()`, refuses `http://` URLs unless the process-wide
`AUTHLIB_INSECURE_TRANSPORT` is set (the hub runs behind a TLS-terminating proxy), answers
an unknown `client_id` before any secret is checked (a timing oracle for client ids), narrows
a requested scope silently instead of answering `invalid_scope`, and has no type information
(mypy --strict). The one grant the hub needs is small, so this module implements RFC 6749
§4.4 directly on top of `TokenService` (which signs with joserfc) and `accounts`: form-encoded
body, no repeated parameters, exactly one client authentication method (§2.3.1: Basic with
form-urlencoded id and secret, or `client_id`/`client_secret` in the body), `invalid_client`
401 with `WWW-Authenticate`, other errors 400 in the §5.2 shape, `Cache-Control: no-store`.

Refusals of a login are answered in the API's error shape: 401 `invalid_credentials` with one
message whatever went wrong, 429 `account_locked` with `Retry-After` while locked. The clock
of the lock-out can be replaced (tests) with `app.state.clock = lambda: aware_datetime`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub.api.access import authenticated, hub_of
from hub.api.accounts import MAX_PASSWORD, AuthenticationFailed, login_client, login_user
from hub.api.errors import ApiError
from hub.api.principal import Principal
from hub.api.tokens import MAX_TTL, TokenService

#: Lifetime of the tokens handed out here, in seconds (a disabled user or revoked client
#: keeps a token at most this long).
TOKEN_TTL: Final = 900
_FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"
_MAX_FIELDS: Final = 20
_MAX_USERNAME: Final = 100
_MAX_CLIENT_ID: Final = 64
_MAX_SECRET: Final = 256
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CLIENT_CHALLENGE: Final = 'Basic realm="lampid-hub"'


class _OAuthError(Exception):
    """An RFC 6749 §5.2 error: `{"error", "error_description"}`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        headers = dict(_NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = _CLIENT_CHALLENGE
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _form_fields(body: bytes) -> list[tuple[str, str]]:
    """The fields of a form-encoded body; ValueError if it is not one."""
    return parse_qsl(
        body.decode("utf-8"),
        keep_blank_values=True,
        strict_parsing=bool(body),
        max_num_fields=_MAX_FIELDS,
    )


def _tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


def _clock(request: Request) -> dt.datetime | None:
    clock: Callable[[], dt.datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else None


# ------------------------------------------------------------------ POST /oauth/token


async def oauth_token(request: Request) -> Response:
    try:
        params = await _token_params(request)
        client_id, secret = _client_credentials(request, params)
        grant = params.get("grant_type")
        if not grant:
            raise _OAuthError("invalid_request", "grant_type is required")
        if grant != "client_credentials":
            raise _OAuthError("unsupported_grant_type", "only client_credentials is supported")
        requested = _requested_scopes(params.get("scope"))
        tokens, engine = _tokens(request), hub_of(request).engine
        try:
            principal = await run_in_threadpool(login_client, engine, client_id, secret)
        except AuthenticationFailed:
            raise _OAuthError("invalid_client", "client authentication failed", 401) from None
        if requested is not None:
            missing = requested - principal.scopes
            if missing:
                raise _OAuthError(
                    "invalid_scope", f"not granted to this client: {' '.join(sorted(missing))}"
                )
            principal = dataclasses.replace(principal, scopes=frozenset(requested))
        token = await run_in_threadpool(tokens.issue, principal, TOKEN_TTL)
    except _OAuthError as error:
        return error.response()
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": min(TOKEN_TTL, MAX_TTL),
        "scope": " ".join(sorted(principal.scopes)),
    }
    return JSONResponse(body, headers=_NO_STORE)


async def _token_params(request: Request) -> dict[str, str]:
    if _media_type(request) != _FORM:
        raise _OAuthError("invalid_request", f"the body must be {_FORM}")
    try:
        fields = _form_fields(await request.body())
    except (UnicodeDecodeError, ValueError):
        raise _OAuthError("invalid_request", "the body is not a valid form") from None
    params: dict[str, str] = {}
    for name, value in fields:
        if name in params:
            raise _OAuthError("invalid_request", f"{name} is given more than once")
        params[name] = value
    return params


def _client_credentials(request: Request, params: dict[str, str]) -> tuple[str, str]:
    """`(client_id, secret)` from exactly one method: HTTP Basic or the form fields."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    in_form = "client_secret" in params
    if scheme.lower() == "basic":
        if in_form:
            raise _OAuthError("invalid_request", "use one client authentication method, not two")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _OAuthError("invalid_client", "malformed Basic credentials", 401) from None
        raw_id, colon, raw_secret = decoded.partition(":")
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if not colon or not client_id or not secret:
            raise _OAuthError("invalid_client", "malformed Basic credentials", 401)
        if params.get("client_id", client_id) != client_id:
            raise _OAuthError("invalid_request", "client_id differs from the Basic credentials")
        return _bounded(client_id, secret)
    client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    if not client_id or not secret:
        raise _OAuthError("invalid_client", "client authentication is required", 401)
    return _bounded(client_id, secret)


def _bounded(client_id: str, secret: str) -> tuple[str, str]:
    """No store has ids or secrets this long: refuse before hashing megabytes."""
    if len(client_id) > _MAX_CLIENT_ID or len(secret) > _MAX_SECRET:
        raise _OAuthError("invalid_client", "client authentication failed", 401)
    return client_id, secret


def _requested_scopes(scope: str | None) -> frozenset[str] | None:
    if scope is None or not scope.strip():
        return None
    parts = scope.split(" ")
    if any(not _SCOPE_TOKEN.fullmatch(part) for part in parts):
        raise _OAuthError("invalid_scope", "scope is a list of names separated by single spaces")
    return frozenset(parts)


# ------------------------------------------------------------------ JWKS


def jwks(request: Request) -> Response:
    keys = _tokens(request).jwks()
    return JSONResponse(keys, headers={"Cache-Control": "public, max-age=300"})


# ------------------------------------------------------------------ POST /api/v1/login


async def login(request: Request) -> Response:
    username, password = await _login_fields(request)
    engine, tokens, now = hub_of(request).engine, _tokens(request), _clock(request)

    def run() -> tuple[Principal, str]:
        principal = login_user(engine, username, password, now)
        return principal, tokens.issue(principal, TOKEN_TTL)

    principal, token = await run_in_threadpool(run)
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": min(TOKEN_TTL, MAX_TTL),
        "role": principal.role,
        "wilayah": principal.wilayah,
    }
    return JSONResponse(body, headers=_NO_STORE)


async def _login_fields(request: Request) -> tuple[str, str]:
    media = _media_type(request)
    body = await request.body()
    data: Any
    try:
        if media == _JSON:
            data = orjson.loads(body)
        elif media == _FORM:
            data = dict(_form_fields(body))
        else:
            raise ApiError(415, "unsupported_media_type", f"send {_JSON} or {_FORM}")
    except (orjson.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_request", "the body cannot be read") from None
    username = data.get("username") if isinstance(data, dict) else None
    password = data.get("password") if isinstance(data, dict) else None
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise ApiError(422, "invalid", "username and password are required")
    if len(username) > _MAX_USERNAME or len(password) > MAX_PASSWORD:
        raise ApiError(422, "invalid", "username or password is too long")
    return username, password


# ------------------------------------------------------------------ GET /api/v1/me


def me(request: Request) -> Response:
    principal = authenticated(request)
    name = hub_of(request).regions.name_of(principal.wilayah) if principal.wilayah else None
    return JSONResponse(
        {
            "subject": principal.subject,
            "role": principal.role,
            "wilayah": principal.wilayah,
            "wilayah_nama": name,
            "scopes": sorted(principal.scopes),
        }
    )


root_routes: list[BaseRoute] = [
    Route("/oauth/token", oauth_token, methods=["POST"], name="oauth_token"),
    Route("/.well-known/jwks.json", jwks, methods=["GET"], name="jwks"),
]

routes: list[BaseRoute] = [
    Route("/login", login, methods=["POST"], name="login"),
    Route("/me", me, methods=["GET"], name="me"),
]


# ------------------------------------------------------------------ OpenAPI

_ERROR: Final = {"$ref": "#/components/schemas/Error"}


def _error(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR}},
    }
    if headers:
        answer["headers"] = {
            name: {
                "description": text,
                "schema": {"type": "integer" if name == "Retry-After" else "string"},
            }
            for name, text in headers.items()
        }
    return answer


_OAUTH_ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "unsupported_grant_type",
                "invalid_scope",
            ],
        },
        "error_description": {"type": "string"},
    },
}


def _oauth_error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _OAUTH_ERROR}}}


_SCOPE_LIST: Final = {"type": "string", "description": "scopes separated by spaces"}
_TOKEN_FIELDS: Final = {
    "access_token": {"type": "string", "description": "an ES256 JWT"},
    "token_type": {"type": "string", "const": "Bearer"},
    "expires_in": {"type": "integer", "description": "seconds"},
}
_LOGIN_BODY: Final = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 100},
        "password": {"type": "string", "format": "password", "maxLength": 1024},
    },
}

openapi_paths: dict[str, Any] = {
    "/oauth/token": {
        "post": {
            "operationId": "oauthToken",
            "tags": ["auth"],
            "summary": "Token for a system (OAuth2 client credentials, RFC 6749 §4.4)",
            "description": (
                "Authenticate with HTTP Basic (client_id:secret) or with client_id and "
                "client_secret in the form, not both. `scope` may narrow the registered scopes."
            ),
            "security": [],  # the client authenticates with its id and secret, not a token
            "requestBody": {
                "required": True,
                "content": {
                    _FORM: {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {
                                "grant_type": {"type": "string", "const": "client_credentials"},
                                "scope": _SCOPE_LIST,
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string", "format": "password"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "the access token",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": [*_TOKEN_FIELDS, "scope"],
                                "properties": {**_TOKEN_FIELDS, "scope": _SCOPE_LIST},
                            }
                        }
                    },
                },
                "400": _oauth_error(
                    "invalid_request, unsupported_grant_type or invalid_scope (RFC 6749 §5.2)"
                ),
                "401": {
                    **_oauth_error("invalid_client: unknown, wrong secret or revoked"),
                    "headers": {
                        "WWW-Authenticate": {"schema": {"type": "string"}},
                    },
                },
                "413": _error("the body is too large"),
            },
        }
    },
    "/.well-known/jwks.json": {
        "get": {
            "operationId": "jwks",
            "tags": ["auth"],
            "summary": "Public keys of the hub's tokens (JWK Set, ES256)",
            "security": [],
            "responses": {
                "200": {
                    "description": "the JWK Set, including recently retired keys",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["keys"],
                                "properties": {
                                    "keys": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["kty", "kid", "crv", "x", "y"],
                                            "properties": {
                                                "kty": {"type": "string", "const": "EC"},
                                                "crv": {"type": "string", "const": "P-256"},
                                                "kid": {"type": "string"},
                                                "x": {"type": "string"},
                                                "y": {"type": "string"},
                                                "alg": {"type": "string", "const": "ES256"},
                                                "use": {"type": "string", "const": "sig"},
                                            },
                                        },
                                    }
                                },
                            }
                        }
                    },
                }
            },
        }
    },
    "/api/v1/login": {
        "post": {
            "operationId": "login",
            "tags": ["auth"],
            "summary": "Token for a person (username and password)",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _LOGIN_BODY},
                    _FORM: {"schema": _LOGIN_BODY},
                },
            },
            "responses": {
                "200": {
                    "description": "the access token and who it is for",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": [*_TOKEN_FIELDS, "role", "wilayah"],
                                "properties": {
                                    **_TOKEN_FIELDS,
                                    "role": {
                                        "type": "string",
                                        "enum": ["operator", "verifikator", "admin", "auditor"],
                                    },
                                    "wilayah": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "400": _error("the body cannot be read"),
                "401": _error("wrong username or password (one message for every reason)"),
                "413": _error("the body is too large"),
                "415": _error("not JSON nor a form"),
                "422": _error("username or password missing or too long"),
                "429": _error(
                    "locked after too many failed logins",
                    **{"Retry-After": "seconds until the lock ends"},
                ),
            },
        }
    },
    "/api/v1/me": {
        "get": {
            "operationId": "me",
            "tags": ["auth"],
            "summary": "The caller, as the bearer token says",
            "security": [{"bearer": []}, {"oauth2": []}],
            "responses": {
                "200": {
                    "description": "the caller",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["subject", "role", "wilayah", "scopes"],
                                "properties": {
                                    "subject": {
                                        "type": "string",
                                        "description": "user:<name> or client:<client_id>",
                                    },
                                    "role": {
                                        "type": "string",
                                        "enum": [
                                            "operator",
                                            "verifikator",
                                            "admin",
                                            "auditor",
                                            "system",
                                        ],
                                    },
                                    "wilayah": {"type": "string"},
                                    "wilayah_nama": {"type": ["string", "null"]},
                                    "scopes": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        }
                    },
                },
                "401": _error("no token, or the token is not valid (invalid_token)"),
            },
        }
    },
}
