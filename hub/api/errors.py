"""Errors of the API, all in one JSON shape: `{"error": {"code", "message", "details"}}`.

Never a traceback: an unexpected exception is logged with a reference and answered 500 with
that reference only.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.errors import ConfigValidationError, HubError, SchemaNotFoundError, SourceError

log = logging.getLogger("hub.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}


class ApiError(Exception):
    """Raise anywhere in a handler to answer with this status and error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


async def hub_error(request: Request, exc: Exception) -> Response:
    """The hub's own errors: what the caller sent was wrong (422), or unknown (404)."""
    if isinstance(exc, SchemaNotFoundError):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, ConfigValidationError):
        return error_response(422, "invalid", str(exc.args[0]), exc.errors)
    if isinstance(exc, SourceError):
        return error_response(422, "unreadable_file", str(exc))
    assert isinstance(exc, HubError)
    return error_response(422, "invalid", str(exc))


async def unexpected(request: Request, exc: Exception) -> Response:
    reference = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s on %s %s", reference, request.method, request.url.path)
    return error_response(500, "internal", f"internal error (reference {reference})")


EXCEPTION_HANDLERS = {
    ApiError: api_error,
    HTTPException: http_error,
    HubError: hub_error,
    Exception: unexpected,
}
