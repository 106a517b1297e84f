"""Schemathesis against `/openapi.json`: every operation, valid and invalid input, as a
nasional admin; no 5xx, and every answer matches the document (status, content type, body).

Bounded and deterministic: at most MAX_EXAMPLES cases per operation and mode, derandomized,
no shrinking (a failure is reported as found), no example database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from hub.api.app import create_app
from hub.api.principal import Principal
from hub.context import Hub
from tests.api.test_operations import populate
from tests.sandbox import FATHER, Sandbox, mother

MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
#: Invalid input must be refused (4xx), not answered as if it were valid.
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def fuzzed_app(routed_hub: Hub, tmp_path: Path) -> Starlette:
    """The API on a hub with records in three kelurahan, deliveries, dead letters and audit
    events to find, NIK checks answered by the Dukcapil simulator in process; caller limits
    off, so that the run measures the API, not the limiter."""
    populate(routed_hub, tmp_path)
    app = create_app(routed_hub, limits=None)
    assert routed_hub.routes is not None
    app.state.nik_transport = Sandbox(routed_hub.routes, people=[mother(1), FATHER]).dukcapil_wire
    return app


def _run(operation: Any, mode: Any, headers: dict[str, str]) -> str | None:
    """Fuzz one operation in one mode; the first failure's text, or None."""
    checks = NEGATIVE_CHECKS if mode == schemathesis.GenerationMode.NEGATIVE else CHECKS

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    try:
        fuzz()
    except Unsatisfiable:
        return None  # no invalid input exists for an operation without parameters
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is the latter
        return f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"
    return None


def test_no_server_error_and_no_schema_violation(fuzzed_app: Starlette) -> None:
    token = fuzzed_app.state.tokens.issue(Principal.for_role("user:fuzz", "admin", ""))
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    schema.validate()
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            tested += 1
            failure = _run(operation, mode, headers)
            if failure is not None:
                failures.append(failure)
    assert tested >= 2 * 15
    assert not failures, "\n\n".join(failures)
