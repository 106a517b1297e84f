"""People and systems that may call the API: operator accounts and OAuth2 clients.

Passwords and client secrets are stored only as argon2id hashes (argon2-cffi defaults, the
RFC 9106 low-memory profile). Checking a name that does not exist still verifies a dummy
hash, so the answer takes as long as for a wrong password.

```python
with engine.begin() as conn:
    add_user(conn, "budi.s", password, "operator", "32.73.01.1001", actor="cli:root")
    client_id, secret = add_client(conn, "SIAK Kota", ["records:read"], "32.73", actor="cli:root")
principal = login_user(engine, "budi.s", password)        # commits the audit of a refusal too
```

**Lock-out.** `MAX_FAILURES` wrong passwords in a row lock the account for `LOCK_TIME`;
while locked every attempt is refused without looking at the password. A success resets the
counter; locking resets it too, so after the lock the person has `MAX_FAILURES` tries again.
Every login, refusal and lock is audited (`user.login`, `user.login_failed`, `user.locked`)
with a reason and never the password.

**Who may have which region.** An operator has one desa/kelurahan (`32.73.01.1001`), a
verifikator one kecamatan (`32.73.01`), an admin a kota/kabupaten or wider (`32.73`, `32`, or
`""` for nasional), an auditor and a system any region. The region must exist in `wilayah`
(except `""`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, cast

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.api.errors import ApiError
from hub.api.principal import ROLE_LEVEL, SCOPES, Principal, Role
from hub.audit import AuditLog, utc_timestamp
from hub.errors import ConfigError
from hub.store.tables import api_clients, users, wilayah
from hub.wilayah import code_level

MAX_FAILURES: Final = 5
LOCK_TIME: Final = dt.timedelta(minutes=15)
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
USER_ROLES: Final[tuple[Role, ...]] = ("operator", "verifikator", "admin", "auditor")
USERNAME: Final = re.compile(r"[a-z0-9._-]{3,100}")
#: The widest an admin may be: 2 dotted parts (kota/kabupaten), 1 (provinsi) or 0 (nasional).
_ADMIN_MAX_PARTS: Final = 2

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def use_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Replace the password hasher; returns the previous one.

    A TEST HOOK ONLY: the test suite installs a hasher with low cost parameters so that the
    many logins it makes stay quick. Production code never calls this.
    """
    global _hasher, _dummy_hash
    previous, _hasher, _dummy_hash = _hasher, hasher, None
    return previous


def _verify(stored: str | None, given: str) -> bool:
    """Constant-ish time check; a missing hash verifies a dummy of the same cost."""
    global _dummy_hash
    if stored is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
        stored = _dummy_hash
    try:
        return _hasher.verify(stored, given)
    except (VerificationError, InvalidHashError):
        return False


# ------------------------------------------------------------------ errors


class AuthenticationFailed(ApiError):
    """Wrong name, password or secret, disabled or revoked: one generic 401 for all."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            401,
            "invalid_credentials",
            "the username or password is not correct",
            headers={"WWW-Authenticate": 'Bearer realm="lampid-hub"'},
        )
        #: Why, for the audit and the tests; never shown to the caller.
        self.reason = reason


class AccountLocked(AuthenticationFailed):
    """Too many wrong passwords: 429 with Retry-After until the lock ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("locked")
        self.status = 429
        self.code = "account_locked"
        self.message = "too many failed logins: try again later"
        self.details = {"retry_after": retry_after}
        self.headers = {"Retry-After": str(retry_after)}
        self.retry_after = retry_after


# ------------------------------------------------------------------ shapes


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as listed (no hash)."""

    username: str
    role: str
    wilayah: str
    disabled: bool
    failed_logins: int
    locked_until: str | None
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "wilayah": self.wilayah,
            "disabled": self.disabled,
            "failed_logins": self.failed_logins,
            "locked_until": self.locked_until,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A registered client as listed (no secret, no hash)."""

    client_id: str
    name: str
    scopes: tuple[str, ...]
    wilayah: str
    revoked_at: str | None
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "wilayah": self.wilayah,
            "revoked_at": self.revoked_at,
            "created_at": self.created_at,
        }


# ------------------------------------------------------------------ checks


def _check_region(conn: sa.Connection, role: str, kode: str) -> None:
    """The region fits the role and exists; `ConfigError` saying what is wrong otherwise."""
    if kode == "":
        parts = 0
    else:
        if code_level(kode) is None:
            raise ConfigError(f"wilayah {kode!r} is not a Kemendagri code such as 32.73.01.1001")
        parts = kode.count(".") + 1
    need = ROLE_LEVEL.get(role)
    if need is not None and parts != need:
        what = "a desa/kelurahan (e.g. 32.73.01.1001)" if need == 4 else "a kecamatan (32.73.01)"
        article = "an" if role[0] in "aeiou" else "a"
        raise ConfigError(f"{article} {role} needs {what}, not {kode or 'nasional'!r}")
    if role == "admin" and parts > _ADMIN_MAX_PARTS:
        raise ConfigError(
            f"an admin needs a kota/kabupaten or wider (32.73, 32 or '' for nasional), not {kode!r}"
        )
    if (
        kode
        and conn.execute(sa.select(wilayah.c.kode).where(wilayah.c.kode == kode)).first() is None
    ):
        raise ConfigError(f"wilayah {kode} is not in the region list (hub wilayah import)")


def _check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise ConfigError(
            "a username has 3 to 100 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    return username


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"a password has at most {MAX_PASSWORD} characters")
    if not password.strip():
        raise ConfigError("a password cannot be only spaces")


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    wanted = sorted({s.strip() for s in scopes if s.strip()})
    if not wanted:
        raise ConfigError(f"a client needs at least one scope: {', '.join(sorted(SCOPES))}")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise ConfigError(
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}"
        )
    return tuple(wanted)


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(dt.UTC)


# ------------------------------------------------------------------ users


def add_user(
    conn: sa.Connection, username: str, password: str, role: str, wilayah: str, *, actor: str
) -> UserInfo:
    """Create a person's account (audited `user.added`); `ConfigError` on bad input."""
    _check_username(username)
    if role not in USER_ROLES:
        raise ConfigError(f"role must be one of {', '.join(USER_ROLES)}, not {role!r}")
    _check_password(password)
    _check_region(conn, role, wilayah)
    if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
        raise ConfigError(f"user {username} exists already")
    now = utc_timestamp()
    conn.execute(
        users.insert().values(
            username=username,
            password_hash=_hasher.hash(password),
            role=role,
            wilayah=wilayah,
            disabled=False,
            failed_logins=0,
            locked_until=None,
            created_at=now,
            updated_at=now,
        )
    )
    AuditLog.record(
        conn,
        actor=actor,
        action="user.added",
        entity_type="user",
        entity_id=username,
        details={"role": role, "wilayah": wilayah},
    )
    return UserInfo(username, role, wilayah, False, 0, None, now)


def list_users(conn: sa.Connection) -> list[UserInfo]:
    """Every account, by username."""
    rows = conn.execute(sa.select(users).order_by(users.c.username)).all()
    return [
        UserInfo(
            r.username,
            r.role,
            r.wilayah,
            bool(r.disabled),
            r.failed_logins,
            r.locked_until,
            r.created_at,
        )
        for r in rows
    ]


def disable_user(conn: sa.Connection, username: str, *, actor: str) -> bool:
    """Stop an account from logging in (audited `user.disabled`); False if it already was.

    Tokens already issued stop working within `access.ACTIVE_TTL` seconds.
    """
    row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    if row is None:
        raise ConfigError(f"no user {username}")
    if row.disabled:
        return False
    conn.execute(
        users.update().where(users.c.id == row.id).values(disabled=True, updated_at=utc_timestamp())
    )
    AuditLog.record(
        conn,
        actor=actor,
        action="user.disabled",
        entity_type="user",
        entity_id=username,
        details={},
    )
    return True


def authenticate_user(
    conn: sa.Connection, username: str, password: str, now: dt.datetime | None = None
) -> Principal:
    """The principal of a person with the right password; `AuthenticationFailed` otherwise.

    Writes the failure counter, the lock and their audit events *before* raising, so the
    caller must commit when it catches `AuthenticationFailed` (`login_user` does).
    `AccountLocked` (429) while locked, and on the failure that locks.
    """
    moment = _now(now)
    row = conn.execute(
        sa.select(users).where(users.c.username == username).with_for_update()
    ).first()
    if row is None:
        _verify(None, password)
        _audit_login(conn, "user.login_failed", "?", {"reason": "unknown_user"})
        raise AuthenticationFailed("unknown_user")
    if row.locked_until is not None and _parse_time(row.locked_until) > moment:
        wait = _parse_time(row.locked_until) - moment
        _audit_login(conn, "user.login_failed", row.username, {"reason": "locked"})
        raise AccountLocked(max(1, math.ceil(wait.total_seconds())))
    good = _verify(row.password_hash, password)
    if good and row.disabled:
        _audit_login(conn, "user.login_failed", row.username, {"reason": "disabled"})
        raise AuthenticationFailed("disabled")
    if not good:
        _wrong_password(conn, row, moment)
    values: dict[str, Any] = {}
    if row.failed_logins or row.locked_until is not None:
        values.update(failed_logins=0, locked_until=None)
    rehashed = _hasher.check_needs_rehash(row.password_hash)
    if rehashed:
        values["password_hash"] = _hasher.hash(password)
    if values:
        values["updated_at"] = utc_timestamp()
        conn.execute(users.update().where(users.c.id == row.id).values(**values))
    _audit_login(conn, "user.login", row.username, {"role": row.role, "rehashed": rehashed})
    return Principal.for_role(f"user:{row.username}", cast(Role, row.role), row.wilayah)


def _wrong_password(conn: sa.Connection, row: Any, moment: dt.datetime) -> None:
    failures: int = conn.execute(
        users.update()
        .where(users.c.id == row.id)
        .values(failed_logins=users.c.failed_logins + 1, updated_at=utc_timestamp())
        .returning(users.c.failed_logins)
    ).scalar_one()
    reason = "disabled" if row.disabled else "bad_password"
    _audit_login(conn, "user.login_failed", row.username, {"reason": reason, "failures": failures})
    if failures < MAX_FAILURES or row.disabled:
        raise AuthenticationFailed(reason)
    until = moment + LOCK_TIME
    conn.execute(
        users.update()
        .where(users.c.id == row.id)
        .values(failed_logins=0, locked_until=utc_timestamp(until))
    )
    _audit_login(
        conn,
        "user.locked",
        row.username,
        {
            "failures": failures,
            "until": utc_timestamp(until),
            "minutes": int(LOCK_TIME.total_seconds()) // 60,
        },
    )
    raise AccountLocked(int(LOCK_TIME.total_seconds()))


def _audit_login(conn: sa.Connection, action: str, username: str, details: dict[str, Any]) -> None:
    AuditLog.record(
        conn,
        actor=f"user:{username}",
        action=action,
        entity_type="user",
        entity_id=username,
        details=details,
    )


def login_user(
    engine: sa.Engine, username: str, password: str, now: dt.datetime | None = None
) -> Principal:
    """`authenticate_user` in a transaction of its own that is committed on a refusal too."""
    with engine.connect() as conn:
        try:
            principal = authenticate_user(conn, username, password, now)
        except AuthenticationFailed:
            conn.commit()
            raise
        conn.commit()
    return principal


# ------------------------------------------------------------------ clients


def add_client(
    conn: sa.Connection, name: str, scopes: Iterable[str], wilayah: str, *, actor: str
) -> tuple[str, str]:
    """Register a system (audited `client.added`): `(client_id, secret)`.

    The secret is returned this once; only its hash is stored.
    """
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise ConfigError("a client needs a name of 1 to 200 characters")
    granted = _check_scopes(scopes)
    _check_region(conn, "system", wilayah)
    client_id = f"hub-{secrets.token_hex(12)}"
    secret = secrets.token_urlsafe(32)
    conn.execute(
        api_clients.insert().values(
            client_id=client_id,
            secret_hash=_hasher.hash(secret),
            name=name,
            scopes=" ".join(granted),
            wilayah=wilayah,
            revoked_at=None,
            created_at=utc_timestamp(),
        )
    )
    AuditLog.record(
        conn,
        actor=actor,
        action="client.added",
        entity_type="client",
        entity_id=client_id,
        details={"name": name, "scopes": list(granted), "wilayah": wilayah},
    )
    return client_id, secret


def list_clients(conn: sa.Connection) -> list[ClientInfo]:
    """Every registered client, oldest first."""
    rows = conn.execute(sa.select(api_clients).order_by(api_clients.c.id)).all()
    return [
        ClientInfo(
            r.client_id,
            r.name,
            tuple(r.scopes.split()),
            r.wilayah,
            r.revoked_at,
            r.created_at,
        )
        for r in rows
    ]


def revoke_client(conn: sa.Connection, client_id: str, *, actor: str) -> bool:
    """Refuse the client from now on (audited `client.revoked`); False if it already was.

    Tokens already issued stop working within `access.ACTIVE_TTL` seconds.
    """
    row = conn.execute(sa.select(api_clients).where(api_clients.c.client_id == client_id)).first()
    if row is None:
        raise ConfigError(f"no client {client_id}")
    if row.revoked_at is not None:
        return False
    conn.execute(
        api_clients.update().where(api_clients.c.id == row.id).values(revoked_at=utc_timestamp())
    )
    AuditLog.record(
        conn,
        actor=actor,
        action="client.revoked",
        entity_type="client",
        entity_id=client_id,
        details={"name": row.name},
    )
    return True


def authenticate_client(conn: sa.Connection, client_id: str, secret: str) -> Principal:
    """The `system` principal of a client with the right secret; `AuthenticationFailed`
    (unknown, wrong secret, revoked) otherwise. Refusals of a known client are audited
    (`client.auth_failed`), so commit on `AuthenticationFailed` (`login_client` does)."""
    row = conn.execute(sa.select(api_clients).where(api_clients.c.client_id == client_id)).first()
    good = _verify(None if row is None else row.secret_hash, secret)
    if row is None:
        raise AuthenticationFailed("unknown_client")
    reason = "revoked" if row.revoked_at is not None else None if good else "bad_secret"
    if reason is not None:
        AuditLog.record(
            conn,
            actor=f"client:{row.client_id}",
            action="client.auth_failed",
            entity_type="client",
            entity_id=row.client_id,
            details={"reason": reason},
        )
        raise AuthenticationFailed(reason)
    scopes = frozenset(row.scopes.split()) & SCOPES
    return Principal.for_role(f"client:{row.client_id}", "system", row.wilayah, scopes)


def login_client(engine: sa.Engine, client_id: str, secret: str) -> Principal:
    """`authenticate_client` in a transaction of its own, committed on a refusal too."""
    with engine.connect() as conn:
        try:
            principal = authenticate_client(conn, client_id, secret)
        except AuthenticationFailed:
            conn.commit()
            raise
        conn.commit()
    return principal
