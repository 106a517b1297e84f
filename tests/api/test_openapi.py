"""The OpenAPI 3.1 document: valid, complete for every route the app serves, every error in
the one shape; and the offline page that renders it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from starlette.routing import Mount, Route

from hub.api import openapi
from hub.api.openapi import build_document

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def served(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(METHOD, path) of every route, mounts included; HEAD only where it is not implied."""
    for route in routes:
        if isinstance(route, Mount):
            yield from served(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            path = _PARAM.sub(r"{\1}", prefix + route.path)
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, path


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.fixture
def document(client) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    return answer.json()


def test_every_route_is_described_and_nothing_else(app, document):
    routes = set(served(app.routes))
    assert ("GET", "/api/v1/stats") in routes
    assert ("POST", "/api/v1/deadletters/{id}/replay") in routes
    assert routes - described(document) == set(), "routes missing from /openapi.json"
    assert described(document) - routes == set(), "described but not served"


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "LAMPID Hub API"
    schemathesis.openapi.from_dict(document).validate()
    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "http://testserver/oauth/token"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_reference_resolves(document):
    for ref in set(_refs(document)):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict), ref
            assert part in node, f"{ref} does not resolve"
            node = node[part]


def test_every_operation_is_complete(document):
    ids = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            ids.append(op["operationId"])
            assert op["summary"], where
            assert op["tags"], where
            responses = op["responses"]
            assert any(code.startswith("2") for code in responses), where
            for code, response in responses.items():
                assert response["description"], where
                if code[0] == "2":
                    assert response.get("content") or code == "204", f"{where} {code}"
                # OAuth2's token endpoint answers errors as RFC 6749 (section 5.2) says
                if code[0] == "4" and path != "/oauth/token":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, f"{where} {code}"
            for param in op.get("parameters", []):
                assert param["schema"], f"{where} {param['name']}"
                if param["in"] == "path":
                    assert param["required"] is True
                    assert "{" + param["name"] + "}" in path, where
            if op["security"]:  # a token: 401 and 429 (the caller limits) can always happen
                assert {"401", "429"} <= set(responses), where
                assert "Retry-After" in responses["429"]["headers"], where
    assert len(ids) == len(set(ids)), "operationIds repeat"


def test_my_operations_document_their_scopes_and_errors(document):
    stats = document["paths"]["/api/v1/stats"]["get"]
    assert stats["security"] == [{"bearer": []}, {"oauth2": ["stats:read"]}]
    assert {"400", "401", "403", "422", "429"} <= set(stats["responses"])
    assert [p["name"] for p in stats["parameters"]] == ["type", "status", "wilayah", "level",
                                                        "from", "to"]  # fmt: skip
    replay = document["paths"]["/api/v1/deadletters/{id}/replay"]["post"]
    assert replay["x-required-scope"] == "deliveries:write"
    assert {"404", "409"} <= set(replay["responses"])
    assert document["paths"]["/api/v1/readyz"]["get"]["security"] == []
    assert document["paths"]["/api/v1/schemas"]["get"]["security"][1] == {"oauth2": []}
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]


def test_modules_merge_and_conflicts_are_refused():
    one = SimpleNamespace(
        openapi_paths={"/a": {"get": {"operationId": "a", "summary": "a", "tags": ["x"],
                                      "security": [{"bearer": []}],
                                      "responses": {"200": {"description": "ok"}}}}},
        openapi_schemas={"Thing": {"type": "object"}},
    )  # fmt: skip
    two = SimpleNamespace(openapi_paths={"/a": {"post": {"operationId": "b", "summary": "b",
                                                         "tags": ["y"], "responses": {}}}})  # fmt: skip
    merged = build_document([one, two, SimpleNamespace()])  # type: ignore[list-item]
    assert set(merged["paths"]["/a"]) == {"get", "post"}
    assert set(merged["paths"]["/a"]["get"]["responses"]) == {"200", "401", "429"}
    assert merged["components"]["schemas"]["Thing"] == {"type": "object"}
    assert [tag["name"] for tag in merged["tags"]] == ["x", "y"]
    with pytest.raises(ValueError, match="described twice"):
        build_document([one, one])  # type: ignore[list-item]
    other = SimpleNamespace(openapi_schemas={"Thing": {"type": "string"}})
    with pytest.raises(ValueError, match="Thing"):
        build_document([one, other])  # type: ignore[list-item]


def test_the_page_works_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    html = page.text
    assert 'src="docs/assets/docs.js"' in html
    assert 'href="docs/assets/docs.css"' in html
    script = client.get("/docs/assets/docs.js")
    style = client.get("/docs/assets/docs.css")
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert "openapi.json" in script.text
    for text in (html, script.text, style.text):
        assert "://" not in text  # nothing from elsewhere: no CDN, no external font
        assert "<script>" not in text  # nothing inline (CSP)
        assert "style=" not in text


def test_the_page_and_document_need_no_token_and_other_paths_answer_json(client):
    assert client.get("/openapi.json").status_code == 200
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "Not Found",
                                        "details": None}}  # fmt: skip
    wrong = client.delete("/api/v1/stats")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_parameters_document_what_they_accept():
    param = openapi.Param("n", "A number.", openapi.integer(1, 3), openapi.parse_integer(1, 3))
    assert param.spec() == {"name": "n", "in": "query", "required": False,
                            "description": "A number.",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 3}}  # fmt: skip
    parse = openapi.parse_integer(1, 3)
    assert parse("2") == 2
    for bad in ("0", "4", "1.0", " 1", "+1", "", "1e1"):
        with pytest.raises(ValueError, match="must be"):
            parse(bad)
    cursor = openapi.cursor_param("things")
    assert cursor.parse(openapi.encode_cursor("things", 42)) == 42
    with pytest.raises(ValueError, match="not a cursor"):
        cursor.parse(openapi.encode_cursor("other", 42))
