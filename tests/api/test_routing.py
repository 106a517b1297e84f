"""IndexedRouter: the same route wins as with Starlette's own router, only found sooner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from hub.api.routing import IndexedRouter, first_segment


def _answer(name: str) -> Callable[[Request], Awaitable[PlainTextResponse]]:
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {dict(request.path_params)}")

    return endpoint


ROUTES: list[BaseRoute] = [
    Route("/batches", _answer("list"), methods=["GET"]),
    Route("/batches", _answer("upload"), methods=["POST"]),
    Route("/batches/latest", _answer("latest")),
    Route("/batches/{batch_id:int}", _answer("one")),
    Route("/{kind}/count", _answer("count")),
    Route("/records/{record_id:int}", _answer("record")),
    Route("/", _answer("root")),
]


def _clients() -> tuple[TestClient, TestClient]:
    plain = Starlette(routes=[Mount("/api", routes=ROUTES)])
    indexed = Starlette(routes=[Mount("/api", app=IndexedRouter(ROUTES))])
    return TestClient(plain), TestClient(indexed)


def test_first_segment_of_routes() -> None:
    assert [first_segment(r) for r in ROUTES] == [
        "batches",
        "batches",
        "batches",
        "batches",
        None,
        "records",
        "",
    ]


def test_every_request_gets_the_answer_starlettes_router_gives() -> None:
    plain, indexed = _clients()
    requests = [
        ("GET", "/api/batches"),
        ("POST", "/api/batches"),
        ("PUT", "/api/batches"),  # 405 from the partial match
        ("GET", "/api/batches/latest"),  # the literal route, listed before the parameter
        ("GET", "/api/batches/7"),
        ("GET", "/api/batches/x"),  # no match: 404
        ("GET", "/api/batches/count"),  # the parameter route outside the segment's own
        ("GET", "/api/records/count"),
        ("GET", "/api/records/3"),
        ("GET", "/api/unknown/9"),
        ("GET", "/api/"),
        ("GET", "/api"),  # redirect to the slash
        ("GET", "/api/batches/7/"),  # redirect without the slash
    ]
    for method, path in requests:
        expected = plain.request(method, path, follow_redirects=False)
        got = indexed.request(method, path, follow_redirects=False)
        assert (got.status_code, got.text, got.headers.get("location")) == (
            expected.status_code,
            expected.text,
            expected.headers.get("location"),
        ), (method, path)
