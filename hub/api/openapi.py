"""The API description: OpenAPI 3.1 at `/openapi.json`, and an offline page at `/docs`.

Every API module describes its own routes in `openapi_paths` (full paths such as
`/api/v1/stats`) and, when it names shared schemas, `openapi_schemas`; `build_document`
merges whatever the modules export with what every operation shares: the one error shape
(`#/components/schemas/Error`), the bearer token and the OAuth2 client-credentials flow.

Query and path parameters are `Param`s: one object both documents a parameter and reads
it from the request, so the document and the checks cannot drift apart.

```python
LIMIT = Param("limit", "Page size.", integer(1, 500), parse_integer(1, 500))
openapi_paths = {"/api/v1/things": {"get": operation(
    "listThings", "List things", tag="things", auth="things:read",
    params=[LIMIT], ok=json_body(page_schema))}}

def handler(request):
    limit = LIMIT.read(request) or 100     # 400 `bad_request` naming the parameter
```

`/docs` renders the document with the page's own script and style (`/docs/assets/...`),
nothing from a CDN, so it works offline under `Content-Security-Policy: default-src 'self'`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, Final, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub.api.errors import ApiError
from hub.api.principal import SCOPES

JSON: Final = "application/json"
TOKEN_PATH: Final = "/oauth/token"
ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}

#: What each error status means, as every operation documents it.
ERROR_DESCRIPTIONS: Final[Mapping[int, str]] = {
    400: "A parameter is malformed (`bad_request`; `details.parameter` names it).",
    401: "No valid bearer token (`unauthorized` or `invalid_token`).",
    403: "The caller's role or region does not allow this (`forbidden`); the attempt is audited.",
    404: "Nothing by that name or id (`not_found`).",
    409: "The resource is not in a state that allows this (`conflict`).",
    413: "The request body is too large (`too_large`).",
    415: "The request body has an unsupported media type.",
    422: "The request is well-formed but cannot be processed (`invalid`).",
    429: "Too many requests or the daily quota is used up (`too_many_requests`); see "
    "`Retry-After`.",
    503: "A dependency is not available.",
}

_RATE_HEADERS: Final = {
    "RateLimit-Limit": "Requests allowed in the current window (the burst, or the day).",
    "RateLimit-Remaining": "Requests left in that window.",
    "RateLimit-Reset": "Seconds until that window is full again.",
}


def _integer_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


RATE_LIMIT_HEADERS: Final = {name: _integer_header(text) for name, text in _RATE_HEADERS.items()}

ERROR_SCHEMA: Final = {
    "type": "object",
    "description": "Every error of the API has this shape; never a traceback.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "details": {"description": "Structured detail, or null."},
            },
            "required": ["code", "message", "details"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

SCOPE_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "batches:read": "Read batches and their reports",
    "batches:write": "Upload batches",
    "records:read": "Read records (masked)",
    "records:write": "Submit records",
    "records:approve": "Approve or reject records",
    "pii:read": "See personal data unmasked",
    "nik:verify": "Check a NIK",
    "stats:read": "Read statistics",
    "deliveries:read": "Read the outbox and dead letters",
    "deliveries:write": "Replay dead letters",
    "audit:read": "Read the audit trail",
}

TAGS: Final = (
    ("health", "Liveness and readiness, without a token."),
    ("auth", "Tokens for people and systems."),
    ("batches", "Uploaded report files."),
    ("records", "Civil-registration records."),
    ("catalog", "Record schemas and the Kemendagri region list."),
    ("stats", "Counts from the statistics read model."),
    ("operations", "The outbox, dead letters and the audit trail."),
    ("docs", "This description."),
)

#: `auth=` of `operation`: no token at all, or any valid token without a particular scope.
PUBLIC: Final = None
AUTHENTICATED: Final = ""


# ------------------------------------------------------------------ schema helpers


def obj(
    properties: Mapping[str, Any], *, optional: Iterable[str] = (), description: str = ""
) -> dict[str, Any]:
    """A closed object schema: every property required unless named in `optional`."""
    left_out = set(optional)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": dict(properties),
        "required": [name for name in properties if name not in left_out],
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` or null (OpenAPI 3.1 spells it with a type list)."""
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif "enum" in out:
        out["enum"] = [*out["enum"], None]
    else:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def page_of(item: Mapping[str, Any], description: str) -> dict[str, Any]:
    """A page of a cursor-paginated list."""
    return obj(
        {
            "items": {"type": "array", "items": dict(item)},
            "next_cursor": {
                **nullable({"type": "string"}),
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
        description=description,
    )


def json_body(schema: Mapping[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": dict(schema)}}}


def error_response(status: int, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or ERROR_DESCRIPTIONS[status],
        "content": {JSON: {"schema": dict(ERROR_REF)}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": _integer_header("Seconds to wait before trying again."),
            **copy.deepcopy(RATE_LIMIT_HEADERS),
        }
    return response


def operation(
    operation_id: str,
    summary: str,
    *,
    tag: str,
    auth: str | None,
    ok: Mapping[str, Any],
    status: int = 200,
    description: str = "",
    params: Sequence[Param] = (),
    errors: Iterable[int] = (),
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One operation object. `auth` is `PUBLIC`, `AUTHENTICATED` or the scope it needs;
    401/403/429 (and 400 when there are parameters) are added as they apply."""
    codes = set(errors)
    if params:
        codes.add(400)
    success = copy.deepcopy(dict(ok))
    if auth is not None:
        if auth and auth not in SCOPES:
            raise ValueError(f"{operation_id}: unknown scope {auth!r}")
        codes |= {401, 429} | ({403} if auth else set())
        success.setdefault("headers", {}).update(copy.deepcopy(RATE_LIMIT_HEADERS))
    item: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {
            str(status): success,
            **{str(code): error_response(code) for code in sorted(codes)},
        },
    }
    if description:
        item["description"] = description
    if params:
        item["parameters"] = [param.spec() for param in params]
    if body is not None:
        item["requestBody"] = copy.deepcopy(dict(body))
    if auth is None:
        item["security"] = []
    else:
        scopes = [auth] if auth else []
        item["security"] = [{"bearer": []}, {"oauth2": scopes}]
        if auth:
            item["x-required-scope"] = auth
    return item


# ------------------------------------------------------------------ parameters

Parser = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class Param:
    """A query or path parameter: its OpenAPI description and how it is read."""

    name: str
    description: str
    schema: Mapping[str, Any]
    parse: Parser
    where: Literal["query", "path"] = "query"
    required: bool = False
    example: Any = None

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "description": self.description,
            "schema": copy.deepcopy(dict(self.schema)),
        }
        if self.example is not None:
            spec["example"] = self.example
        return spec

    def read(self, request: Request) -> Any:
        """The parsed value, None when absent; `ApiError(400)` when it does not parse."""
        if self.where == "path":
            raw = request.path_params.get(self.name)
        elif request.scope.get("query_string"):
            raw = request.query_params.get(self.name)
        else:  # no query string at all: the common case, without parsing one
            raw = None
        if raw is None:
            if self.required:
                raise bad_parameter(self.name, "is required")
            return None
        try:
            return self.parse(str(raw))
        except ValueError as exc:
            raise bad_parameter(self.name, str(exc)) from None


def bad_parameter(name: str, problem: str) -> ApiError:
    return ApiError(400, "bad_request", f"parameter {name!r} {problem}", {"parameter": name})


_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)


def integer(minimum: int, maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def parse_integer(minimum: int, maximum: int) -> Parser:
    def parse(raw: str) -> int:
        if not _INTEGER.fullmatch(raw):
            raise ValueError("must be a whole number")
        value = int(raw)
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return parse


def text(pattern: str, max_length: int, min_length: int = 1) -> dict[str, Any]:
    """A string schema; `pattern` is anchored (`^...$`) and read with `re.fullmatch`."""
    return {
        "type": "string",
        "minLength": min_length,
        "maxLength": max_length,
        "pattern": pattern,
    }


def parse_text(pattern: str, max_length: int, min_length: int = 1) -> Parser:
    compiled = re.compile(pattern)

    def parse(raw: str) -> str:
        if not min_length <= len(raw) <= max_length:
            raise ValueError(f"must be {min_length} to {max_length} characters long")
        if not compiled.fullmatch(raw):
            raise ValueError(f"must match {pattern}")
        return raw

    return parse


def choice(values: Sequence[str]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def parse_choice(values: Sequence[str]) -> Parser:
    allowed = frozenset(values)

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(values)}")
        return raw

    return parse


MONTH_PATTERN: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
REGION_PATTERN: Final = r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$"
MOMENT_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
_MOMENT = re.compile(MOMENT_PATTERN)


def parse_moment(raw: str) -> tuple[dt.datetime, bool]:
    """A date or an RFC 3339 date-time -> (UTC moment, whether only a date was given).
    A date-time without an offset is UTC."""
    if not _MOMENT.fullmatch(raw):
        raise ValueError("must be a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        if "T" not in raw:
            day = dt.date.fromisoformat(raw)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC), True
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC), False
    except (ValueError, OverflowError):
        raise ValueError("is not a real date or time") from None


def moment_param(name: str, description: str) -> Param:
    return Param(
        name,
        description,
        {"type": "string", "maxLength": 40, "pattern": MOMENT_PATTERN},
        parse_moment,
        example="2025-07-01",
    )


# ------------------------------------------------------------------ cursors

CURSOR_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"


def encode_cursor(kind: str, last_id: int) -> str:
    """An opaque cursor: `kind` keeps one list's cursor from being used on another."""
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def cursor_param(kind: str) -> Param:
    def parse(raw: str) -> int:
        if not re.fullmatch(CURSOR_PATTERN, raw):
            raise ValueError("is not a cursor of this list")
        try:
            decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("is not a cursor of this list") from None
        prefix, _, number = decoded.partition(":")
        if prefix != kind or not number.isdigit() or len(number) > 18:
            raise ValueError("is not a cursor of this list")
        return int(number)

    return Param(
        "cursor",
        "The `next_cursor` of the previous page.",
        {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": 64},
        parse,
    )


# ------------------------------------------------------------------ the document


def _version() -> str:
    try:
        return metadata.version("lampid-hub")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _with_caller_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Every operation that takes a token can answer 401 and, the caller limits being
    app-wide, 429: add them where a module left them out."""
    if spec.get("security") and isinstance(spec.get("responses"), dict):
        for status in (401, 429):
            spec["responses"].setdefault(str(status), error_response(status))
    return spec


def build_document(modules: Iterable[ModuleType]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of everything `modules` describe (`openapi_paths`,
    `openapi_schemas`); a path and method described twice, or a schema name used for two
    different schemas, raises ValueError."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": copy.deepcopy(ERROR_SCHEMA)}
    for module in modules:
        described: Mapping[str, Mapping[str, Any]] = getattr(module, "openapi_paths", {})
        for path, item in described.items():
            merged = paths.setdefault(path, {})
            for method, spec in item.items():
                if method in merged:
                    raise ValueError(f"{method.upper()} {path} is described twice")
                merged[method] = _with_caller_errors(copy.deepcopy(spec))
        named: Mapping[str, Any] = getattr(module, "openapi_schemas", {})
        for name, schema in named.items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name} is described twice, differently")
            schemas[name] = copy.deepcopy(schema)
    used_tags = {tag for item in paths.values() for op in item.values() for tag in op["tags"]}
    known = {name for name, _ in TAGS}
    tags = [{"name": n, "description": d} for n, d in TAGS if n in used_tags]
    tags += [{"name": n} for n in sorted(used_tags - known)]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LAMPID Hub API",
            "version": _version(),
            "description": (
                "Integration hub for Indonesian regional civil registration (LAMPID). "
                'Every error has the shape `{"error": {"code", "message", "details"}}`. '
                "Callers are limited per person or system (requests per second and per day): "
                "a `429` carries `Retry-After` and `RateLimit-*` headers."
            ),
        },
        "tags": tags,
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {
            "schemas": {name: schemas[name] for name in sorted(schemas)},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An ES256 access token of the hub (people log in; systems "
                    "use the client-credentials flow).",
                },
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": TOKEN_PATH,
                            "scopes": {s: SCOPE_DESCRIPTIONS.get(s, s) for s in sorted(SCOPES)},
                        }
                    },
                },
            },
        },
    }


# ------------------------------------------------------------------ routes


def for_request(document: Mapping[str, Any], request: Request) -> dict[str, Any]:
    """The document with the token URL made absolute (OpenAPI 3.1 asks for a URI there),
    at the address the caller reached the hub by."""
    token_url = str(request.base_url).rstrip("/") + TOKEN_PATH
    components = dict(document["components"])
    schemes = dict(components["securitySchemes"])
    oauth2 = copy.deepcopy(schemes["oauth2"])
    oauth2["flows"]["clientCredentials"]["tokenUrl"] = token_url
    schemes["oauth2"] = oauth2
    components["securitySchemes"] = schemes
    return {**document, "components": components}


async def openapi_json(request: Request) -> Response:
    return JSONResponse(for_request(request.app.state.openapi, request))


async def docs_page(request: Request) -> Response:
    return Response(DOCS_HTML, media_type="text/html; charset=utf-8")


async def docs_script(request: Request) -> Response:
    return Response(DOCS_JS, media_type="text/javascript; charset=utf-8")


async def docs_style(request: Request) -> Response:
    return Response(DOCS_CSS, media_type="text/css; charset=utf-8")


#: Served at the root (next to /api/v1), not under the versioned prefix.
routes: list[BaseRoute] = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
    Route("/docs/assets/docs.js", docs_script, methods=["GET"]),
    Route("/docs/assets/docs.css", docs_style, methods=["GET"]),
]


def _text_body(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


openapi_paths: dict[str, Any] = {
    "/openapi.json": {
        "get": operation(
            "getOpenApi",
            "This document",
            tag="docs",
            auth=PUBLIC,
            ok=json_body({"type": "object"}, "The OpenAPI 3.1 document of the API."),
        )
    },
    "/docs": {
        "get": operation(
            "getDocs",
            "The API page",
            tag="docs",
            auth=PUBLIC,
            description="An HTML page that renders `/openapi.json`; works offline.",
            ok=_text_body("text/html", "The page."),
        )
    },
    "/docs/assets/docs.js": {
        "get": operation(
            "getDocsScript",
            "The API page's script",
            tag="docs",
            auth=PUBLIC,
            ok=_text_body("text/javascript", "The script."),
        )
    },
    "/docs/assets/docs.css": {
        "get": operation(
            "getDocsStyle",
            "The API page's style",
            tag="docs",
            auth=PUBLIC,
            ok=_text_body("text/css", "The style sheet."),
        )
    },
}


# ------------------------------------------------------------------ the offline page

DOCS_HTML: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LAMPID Hub API</title>
<link rel="stylesheet" href="docs/assets/docs.css">
<script defer src="docs/assets/docs.js"></script>
</head>
<body>
<header>
  <h1 id="title">LAMPID Hub API</h1>
  <p id="version"></p>
  <p id="description"></p>
  <input id="filter" type="search" placeholder="Filter by path, summary or tag"
         aria-label="Filter operations">
</header>
<main id="operations"><p>Loading <a href="openapi.json">openapi.json</a>&hellip;</p></main>
<section id="schemas"></section>
<noscript>This page needs JavaScript; the description itself is at
<a href="openapi.json">/openapi.json</a>.</noscript>
</body>
</html>
"""

DOCS_CSS: Final = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #d9dde5; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: #fff; }
header { padding: 1.2rem 2rem; background: var(--bg); border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 .2rem; font-size: 1.5rem; }
header p { margin: .2rem 0; color: var(--muted); max-width: 60rem; }
#filter { margin-top: .6rem; width: 100%; max-width: 30rem; padding: .4rem .6rem;
  border: 1px solid var(--line); border-radius: 4px; font: inherit; }
main, #schemas { padding: 1rem 2rem; }
h2 { font-size: 1.15rem; margin: 1.4rem 0 .4rem; text-transform: capitalize; }
h2 small { color: var(--muted); font-weight: normal; text-transform: none; margin-left: .5rem; }
details.op { border: 1px solid var(--line); border-radius: 4px; margin: .35rem 0; }
details.op > summary { cursor: pointer; padding: .45rem .6rem; list-style: none;
  display: flex; gap: .7rem; align-items: baseline; }
details.op[open] > summary { border-bottom: 1px solid var(--line); background: var(--bg); }
.method { font: bold 12px/1 monospace; padding: .3rem .45rem; border-radius: 3px;
  color: #fff; min-width: 4.2rem; text-align: center; text-transform: uppercase; }
.get { background: #2f6fb2; } .post { background: #2d8a4e; } .put { background: #a36a00; }
.patch { background: #7a4bb0; } .delete { background: #b23a3a; }
.path { font-family: monospace; font-size: 14px; }
.summary { color: var(--muted); }
.scope { margin-left: auto; font: 12px monospace; color: var(--muted); }
.body { padding: .6rem .9rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 .8rem; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: .3rem .4rem;
  vertical-align: top; font-size: 14px; }
th { color: var(--muted); font-weight: 600; }
code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: .5rem; overflow: auto;
  max-height: 24rem; margin: .2rem 0 .6rem; }
h4 { margin: .6rem 0 .2rem; font-size: .95rem; }
.hidden { display: none; }
.error { color: #b23a3a; }
"""

DOCS_JS: Final = r"""
"use strict";
(function () {
  var here = document.currentScript ? document.currentScript.src : location.href;
  var documentUrl = new URL("../../openapi.json", here).href;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function resolve(spec, schema) {
    if (schema && schema.$ref && schema.$ref.indexOf("#/") === 0) {
      var node = spec;
      schema.$ref.slice(2).split("/").forEach(function (part) { node = node && node[part]; });
      return node || schema;
    }
    return schema;
  }

  function typeOf(schema) {
    if (!schema) { return ""; }
    if (schema.$ref) { return schema.$ref.split("/").pop(); }
    if (schema.enum) { return schema.enum.map(String).join(" | "); }
    var type = Array.isArray(schema.type) ? schema.type.join(" | ") : (schema.type || "any");
    var extra = [];
    if (schema.pattern) { extra.push("pattern " + schema.pattern); }
    if (schema.minimum !== undefined) { extra.push(">= " + schema.minimum); }
    if (schema.maximum !== undefined) { extra.push("<= " + schema.maximum); }
    if (schema.maxLength !== undefined) { extra.push("max length " + schema.maxLength); }
    return extra.length ? type + " (" + extra.join(", ") + ")" : type;
  }

  function table(headers, rows) {
    var t = el("table"), head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", null, h)); });
    t.appendChild(head);
    rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (cell) {
        var td = el("td");
        if (cell instanceof Node) { td.appendChild(cell); } else { td.textContent = cell; }
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    return t;
  }

  function schemaBlock(spec, schema) {
    return el("pre", null, JSON.stringify(resolve(spec, schema), null, 2));
  }

  function renderOperation(spec, path, method, op) {
    var box = el("details", "op");
    box.dataset.search = [path, method, op.summary || "", (op.tags || []).join(" ")]
      .join(" ").toLowerCase();
    var head = el("summary");
    head.appendChild(el("span", "method " + method, method));
    head.appendChild(el("span", "path", path));
    head.appendChild(el("span", "summary", op.summary || ""));
    var security = op.security || [];
    var scope = op["x-required-scope"] ||
      (security.length ? "token" : "public");
    head.appendChild(el("span", "scope", scope));
    box.appendChild(head);
    var body = el("div", "body");
    if (op.description) { body.appendChild(el("p", null, op.description)); }
    var params = op.parameters || [];
    if (params.length) {
      body.appendChild(el("h4", null, "Parameters"));
      body.appendChild(table(["name", "in", "required", "type", "description"],
        params.map(function (p) {
          return [p.name, p.in, p.required ? "yes" : "no", typeOf(p.schema),
                  p.description || ""];
        })));
    }
    if (op.requestBody) {
      body.appendChild(el("h4", null, "Request body"));
      Object.keys(op.requestBody.content || {}).forEach(function (type) {
        body.appendChild(el("code", null, type));
        body.appendChild(schemaBlock(spec, op.requestBody.content[type].schema));
      });
    }
    body.appendChild(el("h4", null, "Responses"));
    var responses = op.responses || {};
    body.appendChild(table(["status", "description", "content"],
      Object.keys(responses).map(function (status) {
        var response = responses[status];
        var content = response.content || {};
        var cell = el("div");
        Object.keys(content).forEach(function (type) {
          cell.appendChild(el("code", null, type + ": " + typeOf(content[type].schema)));
        });
        return [status, response.description || "", cell];
      })));
    Object.keys(responses).forEach(function (status) {
      var content = responses[status].content || {};
      var json = content["application/json"];
      if (status.charAt(0) === "2" && json && json.schema) {
        body.appendChild(el("h4", null, status + " body"));
        body.appendChild(schemaBlock(spec, json.schema));
      }
    });
    box.appendChild(body);
    return box;
  }

  function render(spec) {
    document.title = spec.info.title + " " + spec.info.version;
    document.getElementById("title").textContent = spec.info.title;
    document.getElementById("version").textContent =
      "Version " + spec.info.version + " \u00b7 OpenAPI " + spec.openapi;
    document.getElementById("description").textContent = spec.info.description || "";
    var main = document.getElementById("operations");
    main.textContent = "";
    var groups = {}, order = [];
    (spec.tags || []).forEach(function (tag) { groups[tag.name] = []; order.push(tag.name); });
    Object.keys(spec.paths).forEach(function (path) {
      Object.keys(spec.paths[path]).forEach(function (method) {
        var op = spec.paths[path][method];
        var tag = (op.tags && op.tags[0]) || "other";
        if (!groups[tag]) { groups[tag] = []; order.push(tag); }
        groups[tag].push(renderOperation(spec, path, method, op));
      });
    });
    var descriptions = {};
    (spec.tags || []).forEach(function (tag) { descriptions[tag.name] = tag.description; });
    order.forEach(function (name) {
      if (!groups[name].length) { return; }
      var section = el("section", "group");
      var title = el("h2", null, name);
      if (descriptions[name]) { title.appendChild(el("small", null, descriptions[name])); }
      section.appendChild(title);
      groups[name].forEach(function (node) { section.appendChild(node); });
      main.appendChild(section);
    });
    var schemas = (spec.components && spec.components.schemas) || {};
    var box = document.getElementById("schemas");
    box.appendChild(el("h2", null, "Schemas"));
    Object.keys(schemas).forEach(function (name) {
      var item = el("details", "op");
      item.dataset.search = name.toLowerCase();
      var head = el("summary");
      head.appendChild(el("span", "path", name));
      item.appendChild(head);
      var body = el("div", "body");
      body.appendChild(el("pre", null, JSON.stringify(schemas[name], null, 2)));
      item.appendChild(body);
      box.appendChild(item);
    });
  }

  function filter(text) {
    var needle = text.trim().toLowerCase();
    document.querySelectorAll("details.op").forEach(function (node) {
      var hit = !needle || node.dataset.search.indexOf(needle) !== -1;
      node.classList.toggle("hidden", !hit);
    });
  }

  function start() {
    document.getElementById("filter").addEventListener("input", function (event) {
      filter(event.target.value);
    });
    fetch(documentUrl, { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(render)
      .catch(function (error) {
        var main = document.getElementById("operations");
        main.textContent = "";
        main.appendChild(el("p", "error", "Could not load " + documentUrl + ": " + error));
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
"""
