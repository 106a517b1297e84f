"""`IndexedRouter`: Starlette's router, with the routes to try picked by the first segment
of the path instead of trying every route in turn.

Starlette matches a request against each route's regular expression in order, so the last
of forty routes pays for thirty-nine misses on every request. Routes whose first path
segment is literal (`/batches/{batch_id}` -> `batches`) can only match paths that start with
that segment; the index keeps, per segment, the routes that can (in their original order,
with every route whose first segment is a parameter), so the first full match is the one
Starlette would find. Anything the index does not settle (no full match: 405, redirects,
404) goes through Starlette's own logic, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send

_FIRST_SEGMENT: Final = re.compile(r"^/([^/{]*)(?=/|$)")


def first_segment(route: BaseRoute) -> str | None:
    """The literal first path segment of `route`, or None when any path could match it."""
    path = route.path if isinstance(route, Route | Mount) else None
    if path is None:
        return None
    found = _FIRST_SEGMENT.match(path)
    return None if found is None else found.group(1)


class IndexedRouter(Router):
    """A `Router` that finds its route through an index of first path segments."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__(routes=list(routes))
        segments = {first_segment(route) for route in self.routes} - {None}
        self._index: dict[str, list[BaseRoute]] = {
            segment: [r for r in self.routes if first_segment(r) in (segment, None)]
            for segment in segments
            if segment is not None
        }
        self._anywhere = [r for r in self.routes if first_segment(r) is None]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = get_route_path(scope)
            segment = path[1:].partition("/")[0]
            for route in self._index.get(segment, self._anywhere):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)
