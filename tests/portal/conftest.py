"""The portal on a routed hub: accounts for each role, a browser-like client, helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hub.api import accounts
from hub.api.app import create_app
from hub.context import Hub
from tests.builders import KELAHIRAN_HEADER, kelahiran_row, write_xlsx

PASSWORD = "kata-sandi-rahasia-1"
#: username -> (role, wilayah)
PEOPLE = {
    "siti.op": ("operator", "32.73.01.1001"),
    "andi.op": ("operator", "32.73.01.1002"),
    "dewi.ver": ("verifikator", "32.73.01"),
    "rudi.ver": ("verifikator", "32.73.02"),
    "admin.kota": ("admin", "32.73"),
    "audit.pusat": ("auditor", ""),
    "audit.kota": ("auditor", "32.73"),
}
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture(autouse=True)
def quick_hasher() -> Iterator[None]:
    previous = accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    accounts.use_hasher(previous)


def add_people(hub: Hub) -> None:
    with hub.engine.begin() as conn:
        for name, (role, wilayah) in PEOPLE.items():
            accounts.add_user(conn, name, PASSWORD, role, wilayah, actor="test")


@pytest.fixture
def app(routed_hub: Hub, quick_hasher: None) -> Starlette:
    add_people(routed_hub)
    return create_app(routed_hub, limits=None)


@pytest.fixture
def browser(app: Starlette) -> Iterator[TestClient]:
    """A client that keeps cookies, as a browser does (base URL on HTTP, like an intranet)."""
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    """Log in as `username` (whoever was logged in before)."""
    if "hub_sesi" in client.cookies:
        client.cookies.delete("hub_sesi")
    page = client.get("/masuk")
    return client.post(
        "/masuk",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
    )


def messy_rows() -> list[list[Any]]:
    """Five birth rows: two good, a bad NIK, a bad date, a missing name."""
    return [
        kelahiran_row(1),
        kelahiran_row(2, **{"NIK Ibu": "32730145079"}),
        kelahiran_row(3, **{"Tgl Lahir": "31/02/2025"}),
        kelahiran_row(4, **{"Nama Ibu": ""}),
        kelahiran_row(5),
    ]


def messy_xlsx(path: Path) -> Path:
    return write_xlsx(path, KELAHIRAN_HEADER, messy_rows())


def fixed_xlsx(path: Path) -> Path:
    return write_xlsx(path, KELAHIRAN_HEADER, [kelahiran_row(i) for i in range(1, 6)])
