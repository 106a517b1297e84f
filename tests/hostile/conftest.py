"""The API fixtures of tests/api (app, client, auth) for the hostile API tests."""

from __future__ import annotations

from tests.api.conftest import app, auth, client

__all__ = ["app", "auth", "client"]
