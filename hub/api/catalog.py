"""The catalog: record schemas and the Kemendagri region list, for any authenticated caller.

```
GET /api/v1/schemas                  every record type, its versions and title
GET /api/v1/schemas/{type}           one schema (latest, or ?version=N), refs resolved
GET /api/v1/wilayah/{kode}           one region, with its parent and number of children
GET /api/v1/wilayah?q=&induk=        regions by name, under a parent, by code
```
Both are reference data (no records, no personal data), so they are not limited to the
caller's region; the caller's limits still count.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub.api.access import authenticated, hub_of
from hub.api.errors import ApiError
from hub.api.limits import limit
from hub.api.openapi import (
    AUTHENTICATED,
    REGION_PATTERN,
    Param,
    integer,
    json_body,
    nullable,
    obj,
    operation,
    parse_integer,
    parse_text,
    text,
)
from hub.schemas import RecordSchema
from hub.store.tables import wilayah
from hub.wilayah import LEVEL_NAMES, find

TYPE_PATTERN: Final = r"^[a-z][a-z_]{0,19}$"
_PRINTABLE: Final = r"^[^\x00-\x1f\x7f]*$"

TYPE = Param(
    "type",
    "Record type, e.g. `kelahiran`.",
    text(TYPE_PATTERN, 20),
    parse_text(TYPE_PATTERN, 20),
    where="path",
    example="kelahiran",
)
VERSION = Param(
    "version",
    "Schema version; the latest when absent.",
    integer(1, 10_000),
    parse_integer(1, 10_000),
)
KODE = Param(
    "kode",
    "Dotted region code: `32`, `32.73`, `32.73.01` or `32.73.01.1001`.",
    text(REGION_PATTERN, 13),
    parse_text(REGION_PATTERN, 13),
    where="path",
    example="32.73.01.1001",
)
Q = Param(
    "q",
    "Part of the region's name, any case; empty lists every region (by code).",
    text(_PRINTABLE, 100, 0),
    parse_text(_PRINTABLE, 100, 0),
    example="sukasari",
)
INDUK = Param(
    "induk",
    "Only regions under this code.",
    text(REGION_PATTERN, 13),
    parse_text(REGION_PATTERN, 13),
    example="32.73",
)
LIMIT = Param(
    "limit", "At most this many regions (default 20).", integer(1, 100), parse_integer(1, 100)
)


def _schema_summary(schema: RecordSchema, versions: list[int]) -> dict[str, Any]:
    return {
        "type": schema.record_type,
        "title": schema.title,
        "latest": schema.version,
        "versions": versions,
    }


def _schema_detail(schema: RecordSchema, versions: list[int]) -> dict[str, Any]:
    """The schema with every property's `$ref` resolved, so it stands on its own."""
    bundled = dict(schema.raw)
    bundled["properties"] = {name: dict(spec.schema) for name, spec in schema.fields.items()}
    return {
        "type": schema.record_type,
        "version": schema.version,
        "versions": versions,
        "title": schema.title,
        "fields": [
            {
                "name": spec.name,
                "title": spec.title,
                "type": spec.json_type,
                "required": spec.required,
                "pii": spec.pii,
            }
            for spec in schema.fields.values()
        ],
        "natural_key": list(schema.natural_key),
        "wilayah_field": schema.wilayah_field,
        "event_date": schema.event_date,
        "schema": bundled,
    }


def _list_schemas(request: Request) -> Response:
    limit(request, authenticated(request))
    registry = hub_of(request).schemas
    items = [
        _schema_summary(registry.get(record_type), registry.versions(record_type))
        for record_type in registry.types()
    ]
    return JSONResponse({"items": items})


def _get_schema(request: Request) -> Response:
    limit(request, authenticated(request))
    record_type, version = TYPE.read(request), VERSION.read(request)
    registry = hub_of(request).schemas
    schema = registry.get(record_type, version)  # SchemaNotFoundError: 404
    return JSONResponse(_schema_detail(schema, registry.versions(record_type)))


def _region(row: Any, children: int | None = None) -> dict[str, Any]:
    region = {
        "kode": row.kode,
        "nama": row.nama,
        "level": row.level,
        "level_name": LEVEL_NAMES.get(row.level, str(row.level)),
        "induk": row.induk,
    }
    if children is not None:
        region["children"] = children
    return region


def _get_region(request: Request) -> Response:
    limit(request, authenticated(request))
    kode = KODE.read(request)
    with hub_of(request).engine.connect() as conn:
        row = conn.execute(sa.select(wilayah).where(wilayah.c.kode == kode)).one_or_none()
        if row is None:
            raise ApiError(404, "not_found", f"no region {kode}", {"kode": kode})
        children = conn.execute(
            sa.select(sa.func.count()).select_from(wilayah).where(wilayah.c.induk == kode)
        ).scalar_one()
        parent = None
        if row.induk:
            parent = conn.execute(
                sa.select(wilayah).where(wilayah.c.kode == row.induk)
            ).one_or_none()
    region = _region(row, children)
    region["induk_nama"] = parent.nama if parent is not None else None
    return JSONResponse(region)


def _search_regions(request: Request) -> Response:
    limit(request, authenticated(request))
    words, parent = Q.read(request) or "", INDUK.read(request)
    count = LIMIT.read(request) or 20
    with hub_of(request).engine.connect() as conn:
        found = find(conn, words, parent, limit=count)
    return JSONResponse({"items": [_region(region) for region in found]})


async def list_schemas(request: Request) -> Response:
    return await run_in_threadpool(_list_schemas, request)


async def get_schema(request: Request) -> Response:
    return await run_in_threadpool(_get_schema, request)


async def get_region(request: Request) -> Response:
    return await run_in_threadpool(_get_region, request)


async def search_regions(request: Request) -> Response:
    return await run_in_threadpool(_search_regions, request)


routes: list[BaseRoute] = [
    Route("/schemas", list_schemas, methods=["GET"]),
    Route("/schemas/{type}", get_schema, methods=["GET"]),
    Route("/wilayah", search_regions, methods=["GET"]),
    Route("/wilayah/{kode}", get_region, methods=["GET"]),
]

_LEVEL = {"type": "integer", "minimum": 1, "maximum": 4}
_REGION_PROPS: Final = {
    "kode": {"type": "string", "pattern": REGION_PATTERN},
    "nama": {"type": "string"},
    "level": {**_LEVEL, "description": "1 provinsi, 2 kabupaten/kota, 3 kecamatan, 4 desa"},
    "level_name": {"type": "string", "enum": ["provinsi", "kabkota", "kecamatan", "desa"]},
    "induk": nullable({"type": "string", "pattern": REGION_PATTERN}),
}

openapi_schemas: dict[str, Any] = {
    "Region": obj(_REGION_PROPS, description="One region of the Kemendagri master list."),
    "RegionDetail": obj(
        {
            **_REGION_PROPS,
            "induk_nama": nullable({"type": "string"}),
            "children": {"type": "integer", "minimum": 0},
        },
        description="One region with its parent's name and its number of direct children.",
    ),
    "SchemaSummary": obj(
        {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "latest": {"type": "integer", "minimum": 1},
            "versions": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        }
    ),
    "SchemaDetail": obj(
        {
            "type": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "versions": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "title": {"type": "string"},
            "fields": {
                "type": "array",
                "items": obj(
                    {
                        "name": {"type": "string"},
                        "title": {"type": "string"},
                        "type": {"type": "string"},
                        "required": {"type": "boolean"},
                        "pii": {"type": "boolean", "description": "Personal data (x-pii)."},
                    }
                ),
            },
            "natural_key": {"type": "array", "items": {"type": "string"}},
            "wilayah_field": {"type": "string"},
            "event_date": nullable({"type": "string"}),
            "schema": {
                "type": "object",
                "description": "The JSON Schema (draft 2020-12) with every `$ref` resolved.",
            },
        },
        description="One record schema.",
    ),
}

openapi_paths: dict[str, Any] = {
    "/api/v1/schemas": {
        "get": operation(
            "listSchemas",
            "Record types and their schema versions",
            tag="catalog",
            auth=AUTHENTICATED,
            ok=json_body(
                obj(
                    {
                        "items": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/SchemaSummary"},
                        }
                    }
                )
            ),
        )
    },
    "/api/v1/schemas/{type}": {
        "get": operation(
            "getSchema",
            "One record schema",
            tag="catalog",
            auth=AUTHENTICATED,
            params=[TYPE, VERSION],
            errors=[404],
            ok=json_body({"$ref": "#/components/schemas/SchemaDetail"}),
        )
    },
    "/api/v1/wilayah": {
        "get": operation(
            "searchRegions",
            "Find regions by name",
            tag="catalog",
            auth=AUTHENTICATED,
            description="Regions whose name contains `q`, under `induk` if given, by code.",
            params=[Q, INDUK, LIMIT],
            ok=json_body(
                obj({"items": {"type": "array", "items": {"$ref": "#/components/schemas/Region"}}})
            ),
        )
    },
    "/api/v1/wilayah/{kode}": {
        "get": operation(
            "getRegion",
            "One region",
            tag="catalog",
            auth=AUTHENTICATED,
            params=[KODE],
            errors=[404],
            ok=json_body({"$ref": "#/components/schemas/RegionDetail"}),
        )
    },
}
