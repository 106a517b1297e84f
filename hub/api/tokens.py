"""The hub's access tokens: JWTs signed with ES256 keys the hub keeps (sealed) in its store.

Every token carries `iss`, `aud`, `sub`, `role`, `wilayah`, `scope`, `iat`, `exp` and `jti`;
`verify` accepts only ES256 with a known `kid` and checks issuer, audience and expiry, so
`alg: none`, an HS256 token made with the public key, a foreign key, a tampered payload or an
expired token are all refused the same way (401 `invalid_token`). Keys rotate with
`rotate()`: the new key signs from then on, retired keys stay in the JWKS (and keep verifying)
for `RETIRED_KEEP` so no valid token is cut short. Every process reads the keys again at least
every `REFRESH` seconds (and at once on a token with an unknown `kid`), so a rotation made by
another process (`hub keys rotate`) is picked up without a restart.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from typing import Any, Final

import orjson
import sqlalchemy as sa
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from hub.api.errors import ApiError
from hub.api.principal import ROLES, SCOPES, Principal
from hub.audit import AuditLog, utc_timestamp
from hub.crypto import DataProtector
from hub.store.tables import signing_keys

ALGORITHM: Final = "ES256"
ISSUER: Final = "lampid-hub"
AUDIENCE: Final = "lampid-hub-api"
#: The longest a token lives, in seconds.
MAX_TTL: Final = 3600
#: Seconds a process signs with the keys it read before it reads them again.
REFRESH: Final = 60
#: Retired keys stay published while a token they signed may still be valid: a process may
#: sign with a key up to `REFRESH` seconds after another retired it.
RETIRED_KEEP: Final = dt.timedelta(seconds=MAX_TTL + 2 * REFRESH)
_AAD: Final = b"signing-key"
#: Verified tokens remembered per process (then the memo starts afresh).
VERIFIED_CACHE: Final = 10_000


def _invalid(reason: str) -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        "the access token is not valid",
        {"reason": reason},
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


class TokenService:
    """Issues and verifies access tokens; one per process, shared by every request."""

    def __init__(
        self,
        engine: sa.Engine,
        protector: DataProtector,
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
    ) -> None:
        self.engine = engine
        self.protector = protector
        self.issuer = issuer
        self.audience = audience
        self._lock = threading.Lock()
        self._signing: ECKey | None = None
        self._public: dict[str, ECKey] = {}
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._loaded_at = 0.0

    # ------------------------------------------------------------------ keys

    def _load(self) -> None:
        """Read the keys from the store (creating the first one if there is none)."""
        now = dt.datetime.now(dt.UTC)
        oldest = utc_timestamp(now - RETIRED_KEEP)
        with self.engine.begin() as conn:
            query = sa.select(signing_keys).where(
                sa.or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > oldest)
            )
            rows: list[Any] = list(conn.execute(query).all())
            active = [r for r in rows if r.retired_at is None]
            if not active:
                row = self._create(conn)
                rows.append(row)
                active = [row]
        newest = max(active, key=lambda r: r.created_at)
        private = self.protector.open_json(newest.private_jwk, _AAD + newest.kid.encode())
        self._signing = ECKey.import_key(private)
        self._public = {r.kid: ECKey.import_key(orjson.loads(r.public_jwk)) for r in rows}
        self._loaded_at = time.monotonic()

    def _current(self) -> None:
        """Load the keys if never loaded or read more than `REFRESH` seconds ago (hold the lock)."""
        if self._signing is None or time.monotonic() - self._loaded_at > REFRESH:
            self._load()

    def _create(self, conn: sa.Connection) -> Any:
        kid = uuid.uuid4().hex
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig"}, private=True)
        values = {
            "kid": kid,
            "algorithm": ALGORITHM,
            "private_jwk": self.protector.seal_json(key.as_dict(private=True), _AAD + kid.encode()),
            "public_jwk": orjson.dumps(key.as_dict(private=False)).decode(),
            "created_at": utc_timestamp(),
            "retired_at": None,
        }
        conn.execute(signing_keys.insert().values(**values))
        return conn.execute(sa.select(signing_keys).where(signing_keys.c.kid == kid)).one()

    def rotate(self, *, actor: str = "system") -> str:
        """Start signing with a new key; the old ones retire (still published for a while).

        Audited (`keys.rotated`, by `actor`) in the same transaction.
        """
        with self.engine.begin() as conn:
            retired = conn.execute(
                signing_keys.update()
                .where(signing_keys.c.retired_at.is_(None))
                .values(retired_at=utc_timestamp())
                .returning(signing_keys.c.kid)
            ).scalars()
            old = sorted(retired)
            kid: str = self._create(conn).kid
            AuditLog.record(
                conn,
                actor=actor,
                action="keys.rotated",
                entity_type="signing_key",
                entity_id=kid,
                details={"retired": old},
            )
        with self._lock:
            self._load()
        return kid

    def jwks(self) -> dict[str, Any]:
        """The public keys, for `/.well-known/jwks.json`."""
        with self._lock:
            self._current()
            keys = [key.as_dict(private=False) for key in self._public.values()]
        for key in keys:
            key.setdefault("alg", ALGORITHM)
            key.setdefault("use", "sig")
        return {"keys": keys}

    # ------------------------------------------------------------------ tokens

    def issue(self, principal: Principal, ttl: int = 900) -> str:
        """A signed token for `principal`, valid `ttl` seconds (at most `MAX_TTL`)."""
        with self._lock:
            self._current()
            key = self._signing
        assert key is not None
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.subject,
            "role": principal.role,
            "wilayah": principal.wilayah,
            "scope": " ".join(sorted(principal.scopes)),
            "iat": now,
            "exp": now + min(ttl, MAX_TTL),
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; `ApiError(401)` otherwise.

        A token already verified is remembered until it expires (bounded to
        `VERIFIED_CACHE` entries): a client sends the same token with every request, and the
        signature check is the most expensive step of a small request."""
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jws.extract_compact(token.encode()).protected if token.count(".") == 2 else {}
        except (JoseError, ValueError):
            raise _invalid("malformed") from None
        kid = header.get("kid") if isinstance(header, dict) else None
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise _invalid("algorithm or key id not accepted")
        key = self._public_key(kid)
        try:
            decoded = jwt.decode(token, KeySet([key]), algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                now=int(time.time()),
                leeway=30,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError):
            raise _invalid("signature or claims not valid") from None
        claims = decoded.claims
        role, wilayah = claims.get("role"), claims.get("wilayah")
        scope = claims.get("scope", "")
        if role not in ROLES or not isinstance(wilayah, str) or not isinstance(scope, str):
            raise _invalid("claims not valid")
        scopes = frozenset(scope.split()) & SCOPES
        return Principal(str(claims["sub"]), role, wilayah, scopes), float(claims["exp"])

    def _public_key(self, kid: str) -> ECKey:
        with self._lock:
            self._current()
            key = self._public.get(kid)
            if key is None:  # another process may have rotated: look again, once
                self._load()
                key = self._public.get(kid)
        if key is None:
            raise _invalid("unknown key")
        return key
