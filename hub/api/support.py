"""What the batch and record endpoints share: callers, regions, paging, masking, JSON bodies.

Refusals write an audit event, so they run in the thread pool like every other piece of
blocking database work; a caller who passes pays no extra thread hop for the check.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from hub.api.access import authenticated, deny, require
from hub.api.errors import ApiError
from hub.api.limits import limit
from hub.api.principal import Principal
from hub.schemas import RecordSchema

#: Characters a NIK may be written with inside free text ("3273 0145 0790 0001").
_NIK_IN_TEXT: Final = re.compile(r"\d{16}")
_NIK_NOISE: Final = str.maketrans("", "", " .-'\u00a0")
_CURSOR: Final = re.compile(r"[0-9]{1,10}")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: The largest id a row can have (the store's ids are 32-bit integers on PostgreSQL).
MAX_ID: Final = 2**31 - 1


async def authorize(request: Request, scope: str) -> Principal:
    """`access.require`: the caller if they hold `scope`; 403 (audited, in a thread) if not."""
    principal = authenticated(request)
    if principal.may(scope):
        limit(request, principal)
        return principal
    return await run_in_threadpool(require, request, scope)


async def guard_region(request: Request, principal: Principal, kode: str | None) -> None:
    """403 (audited) unless `kode` lies in the caller's region. `None` (a batch without a
    kelurahan) belongs to the nasional level only."""
    if not principal.covers(kode or ""):
        await run_in_threadpool(deny, request, principal, "wilayah", {"wilayah": kode or ""})


async def guard_scope(request: Request, principal: Principal, scope: str) -> None:
    """A second scope an endpoint needs besides its own (e.g. `pii:read` for a report)."""
    if not principal.may(scope):
        await run_in_threadpool(deny, request, principal, "scope", {"scope": scope})


def within(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """SQL for `principal.covers(prefix, column)`: the code, or a code continuing it at a dot."""
    if prefix == "":
        return sa.true()
    return sa.or_(column == prefix, column.like(prefix + ".%"))


# ------------------------------------------------------------------ query parameters


def bad_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", message, {"parameter": name})


def path_id(request: Request, name: str, what: str) -> int:
    """An id from the path (`{name}` or `{name:int}`); 404 for anything that cannot be the
    id of a stored row (not digits, or past the largest id the store holds)."""
    value = request.path_params[name]
    text = str(value)
    if not _CURSOR.fullmatch(text) or int(text) > MAX_ID:
        raise ApiError(404, "not_found", f"no {what} has that id")
    return int(text)


def page_limit(request: Request, default: int, maximum: int) -> int:
    """`?limit=`: 1..maximum, `default` when absent; 400 otherwise."""
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise bad_parameter("limit", f"limit must be a whole number from 1 to {maximum}")
    return int(text)


def encode_cursor(last_id: int) -> str:
    """An opaque cursor: the position after row `last_id`."""
    return base64.urlsafe_b64encode(f"{last_id}".encode()).decode().rstrip("=")


def page_after(request: Request) -> int:
    """The id a `?cursor=` continues after (0 without one); 400 for a cursor we did not make."""
    text = request.query_params.get("cursor")
    if text is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raw = ""
    if not _CURSOR.fullmatch(raw) or int(raw) > MAX_ID or encode_cursor(int(raw)) != text:
        raise bad_parameter("cursor", "cursor is not valid: use the next_cursor of a page")
    return int(raw)


# ------------------------------------------------------------------ bodies


async def json_body(request: Request, *, optional: bool = False) -> Any:
    """The request's JSON document; 415 for another content type, 400 when not JSON.
    With `optional`, an empty body is `None`."""
    body = await request.body()
    if optional and not body.strip():
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc.msg}") from None


def has_control(text: str) -> bool:
    """True when text holds control characters (NUL and the like) that no report has and
    PostgreSQL cannot store; tab and line breaks are fine."""
    return _CONTROL.search(text) is not None


def holds_nik(text: str) -> bool:
    """True when free text carries a 16-digit number (a NIK or No. KK): such text must not
    reach the audit trail or a clear column."""
    return _NIK_IN_TEXT.search(text.translate(_NIK_NOISE)) is not None


# ------------------------------------------------------------------ masking


def mask_value(kind: str, value: Any) -> Any:
    """A PII value as a caller without `pii:read` sees it: a NIK or KK number as
    `3273********0001`, a name as its initials (`S. A.`), anything else as `***`."""
    if value is None:
        return None
    text = str(value)
    if kind in {"nik", "kk"}:
        if len(text) == 16:
            return f"{text[:4]}{'*' * 8}{text[-4:]}"
        return "*" * len(text)
    if kind == "name":
        words = [word for word in re.split(r"[\s.,]+", text) if word]
        return " ".join(f"{word[0].upper()}." for word in words) or "***"
    return "***"


def shown_values(
    schema: RecordSchema, values: Mapping[str, Any], *, reveal: bool
) -> dict[str, Any]:
    """A record's values for a response: PII fields masked unless `reveal`."""
    if reveal:
        return dict(values)
    out: dict[str, Any] = {}
    for name, value in values.items():
        spec = schema.fields.get(name)
        out[name] = mask_value(spec.kind, value) if spec is not None and spec.pii else value
    return out


def shown_issue_value(
    schema: RecordSchema, field: str | None, value: str | None, reveal: bool
) -> Any:
    """The offending value of an issue: clear for `pii:read` or a field that is not PII."""
    if reveal or value is None:
        return value
    spec = schema.fields.get(field) if field else None
    if spec is not None and not spec.pii:
        return value
    return mask_value(spec.kind if spec is not None else "text", value)
