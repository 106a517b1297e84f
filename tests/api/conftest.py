"""The API on a routed hub (both databases), a test client, and tokens for any caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hub.api.app import create_app
from hub.api.principal import Principal, Role
from hub.context import Hub

Headers = Callable[..., dict[str, str]]


@pytest.fixture
def app(routed_hub: Hub) -> Starlette:
    return create_app(routed_hub)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def auth(app: Starlette) -> Headers:
    """`auth("operator", "32.73.01.1001")` -> headers with a real signed token."""

    def headers(
        role: Role = "operator", wilayah: str = "32.73.01.1001", scopes: Any = (), **extra: str
    ) -> dict[str, str]:
        subject = f"{'client' if role == 'system' else 'user'}:test-{role}"
        principal = Principal.for_role(subject, role, wilayah, frozenset(scopes))
        return {"Authorization": f"Bearer {app.state.tokens.issue(principal)}", **extra}

    return headers
