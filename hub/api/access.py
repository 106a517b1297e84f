"""Who may do what, where: every handler asks here before it reads or writes.

```python
caller = require(request, "records:write")          # 401 without a valid token, 403 without scope
require_region(request, caller, record.kode_wilayah)  # 403 outside the caller's region
```
A refusal (403) is audited (`access.denied`, with the route's path template, never the URL:
paths such as `/nik/{nik}/verify` carry personal data).
"""

from __future__ import annotations

import time
from typing import Any, Final

import sqlalchemy as sa
from starlette.requests import Request

from hub.api.errors import ApiError
from hub.api.principal import Principal
from hub.audit import AuditLog
from hub.context import Hub
from hub.store.tables import api_clients, users


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def authenticated(request: Request) -> Principal:
    """The caller of a request with a valid bearer token; 401 otherwise."""
    state = request.scope.setdefault("state", {})  # `request.state`, without its wrapper
    cached = state.get("principal")
    if isinstance(cached, Principal):
        return cached
    header = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "a bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="lampid-hub"'},
        )
    principal: Principal = request.app.state.tokens.verify(token.strip())
    if not _still_active(request, principal):
        raise ApiError(
            401,
            "invalid_token",
            "the account of this token is disabled or revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    state["principal"] = principal
    return principal


#: How long a "this account is still active" answer is trusted per process.
ACTIVE_TTL: Final = 15.0


def _still_active(request: Request, principal: Principal) -> bool:
    """False once the user is disabled or the client revoked (seen within `ACTIVE_TTL`),
    so a token stops working long before it expires."""
    cache: dict[str, tuple[float, bool]] = request.app.state.__dict__.setdefault(
        "active_accounts", {}
    )
    now = time.monotonic()
    known = cache.get(principal.subject)
    if known is not None and now - known[0] < ACTIVE_TTL:
        return known[1]
    kind, _, name = principal.subject.partition(":")
    if kind == "user":
        query = sa.select(users.c.disabled).where(users.c.username == name)
    elif kind == "client":
        query = sa.select(api_clients.c.revoked_at.is_not(None)).where(
            api_clients.c.client_id == name
        )
    else:
        return False
    with hub_of(request).engine.connect() as conn:
        blocked = conn.execute(query).scalar_one_or_none()
    active = not blocked  # tokens the hub issued for no stored account (scripts) stay valid
    cache[principal.subject] = (now, active)
    return active


def require(request: Request, scope: str) -> Principal:
    """The caller, if their role or registration grants `scope`; 403 (audited) otherwise."""
    principal = authenticated(request)
    if not principal.may(scope):
        deny(request, principal, "scope", {"scope": scope})
    limiter = getattr(request.app.state, "caller_limits", None)
    if limiter is not None:
        limiter.check(request, principal)
    return principal


def require_region(request: Request, principal: Principal, kode: str) -> None:
    """403 (audited) unless `kode` lies in the caller's region."""
    if not principal.covers(kode):
        deny(request, principal, "wilayah", {"wilayah": kode})


def deny(request: Request, principal: Principal, why: str, details: dict[str, Any]) -> None:
    """Audit the refusal, then answer 403."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or "?"
    hub = hub_of(request)
    with hub.engine.begin() as conn:
        AuditLog.record(
            conn,
            actor=principal.subject,
            action="access.denied",
            entity_type="api",
            entity_id=f"{request.method} {path}"[:64],
            details={"reason": why, "role": principal.role, "own": principal.wilayah, **details},
        )
    message = (
        "this region is outside yours" if why == "wilayah" else "your access does not allow this"
    )
    raise ApiError(403, "forbidden", message, {"reason": why, **details})
