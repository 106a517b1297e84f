"""`GET /nik/{nik}/verify`: ask Dukcapil about one NIK, inside every limit the dispatcher keeps.

```
GET /nik/3273014507900001/verify?nama=SITI%20AMINAH&tanggal_lahir=1990-07-05
-> {"found": true, "code": "00", "verdicts": {"nama": {"match": true, "score": 100}}, ...}
```

The answer comes from the verifier's cache (`AnswerCache`, shared with the dispatcher, keyed
by a blind index) when every element asked was judged before; otherwise the Dukcapil
connector of `routes.yaml` is called, checked the way `Dispatcher._call` checks: not stopped or
paused by the dispatcher (`connector_state`), within the allowed hours, breaker closed, a rate
slot (waited for at most `RATE_WAIT` seconds), the daily quota. "Not now" is 503 with
`Retry-After`; nothing is queued. With HUB_REDIS_URL the rate limit and the quota are the ones
the dispatcher uses (same Redis keys); without it they are this process's, the quota starting
from what the dispatcher last published, and Dukcapil's own count (`quota_left`, code 05)
always wins when it is smaller.

The verifier lives on `app.state.nik_verifier`, built on first use. Tests (or a sandbox
deployment) set `app.state.nik_transport` to an httpx2 transport (the simulator in process)
before the first call, or put a ready `NikVerifier` there.

The NIK never reaches the audit trail or a log line: the event is keyed by the cache's blind
index and holds the answer code and the element names only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.base import Verifier, VerifyAnswer
from hub.answers import AnswerCache
from hub.api.access import hub_of
from hub.api.errors import ApiError
from hub.api.support import authorize, bad_parameter, has_control
from hub.audit import AuditLog, utc_timestamp
from hub.breaker import CircuitBreaker
from hub.connectors import build_connector
from hub.context import Hub
from hub.errors import (
    DeliveryError,
    OutsideHoursError,
    QuotaExhaustedError,
    RetriableDeliveryError,
)
from hub.limits import DailyQuota, RateLimiter, build_daily_quota, build_rate_limiter
from hub.routes import ConnectorConfig
from hub.store.tables import connector_state

log = logging.getLogger("hub.api.verify")

Clock = Callable[[], dt.datetime]

#: Seconds a question waits for a rate-limit slot before it is answered 503.
RATE_WAIT: Final = 5.0
#: Requests leave this much under the configured rate (as the dispatcher's do).
RATE_HEADROOM: Final = 0.02
#: Query parameter -> Dukcapil element.
ELEMENTS: Final[Mapping[str, str]] = {"nama": "NAMA_LGKP", "tanggal_lahir": "TGL_LHR"}
_PARAMETERS: Final = {element: name for name, element in ELEMENTS.items()}
_NIK: Final = re.compile(r"[0-9]{16}")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _not_now(code: str, message: str, seconds: float | None) -> ApiError:
    headers = {"Retry-After": str(max(1, round(seconds)))} if seconds is not None else None
    details = {"retry_after": max(1, round(seconds))} if seconds is not None else None
    return ApiError(503, code, message, details, headers)


class NikVerifier:
    """One process's client of the Dukcapil connector for ad-hoc questions."""

    def __init__(
        self,
        hub: Hub,
        config: ConnectorConfig,
        *,
        connector: Verifier | None = None,
        transport: Any = None,
        now: Clock = utc_now,
        redis_url: str | None = None,
        redis_prefix: str = "hub:",
    ) -> None:
        self.hub = hub
        self.config = config
        self.now = now
        built = connector or build_connector(config, transport=transport)
        if not isinstance(built, Verifier):
            raise ApiError(503, "unavailable", f"connector {config.name} cannot verify NIKs")
        self.connector: Verifier = built
        self.cache = AnswerCache(hub.engine, hub.protector, config.name)
        policy = config.circuit_breaker
        self.breaker = CircuitBreaker(policy.failure_threshold, policy.reset_after)
        self._redis: Any = None
        if redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(redis_url)
        self.limiter: RateLimiter | None = None
        if config.rate_limit is not None:
            self.limiter = build_rate_limiter(
                config.name,
                config.rate_limit.per_second,
                config.rate_limit.burst,
                self._redis,
                redis_prefix,
                headroom=RATE_HEADROOM,
            )
        self.quota: DailyQuota | None = None
        if config.daily_quota is not None:
            q = config.daily_quota
            self.quota = build_daily_quota(
                config.name, q.limit, q.resets_at, q.timezone, self._redis, redis_prefix, now=now
            )
        self._restored = self._redis is not None
        self._inflight: dict[bytes, asyncio.Future[None]] = {}

    async def aclose(self) -> None:
        await self.connector.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    def _state(self) -> Any:
        with self.hub.engine.connect() as conn:
            return conn.execute(
                sa.select(connector_state).where(connector_state.c.connector == self.config.name)
            ).one_or_none()

    async def _check_state(self, now: dt.datetime) -> None:
        """Honour what the dispatcher published: stopped (fatal answer), paused (quota,
        hours); take over its quota count once."""
        state = await run_in_threadpool(self._state)
        if state is None:
            return
        if state.state == "stopped":
            raise _not_now(
                "unavailable",
                f"the {self.config.name} connector is stopped until an admin resumes it",
                None,
            )
        if state.paused_until and state.paused_until > utc_timestamp(now):
            until = dt.datetime.fromisoformat(state.paused_until.replace("Z", "+00:00"))
            raise _not_now(
                "unavailable",
                f"the {self.config.name} connector is paused",
                (until - now).total_seconds(),
            )
        if not self._restored and self.quota is not None:
            self._restored = True
            resets = utc_timestamp(self.quota.resets_at())
            if state.quota_left is not None and state.quota_resets_at == resets:
                await self.quota.set_remaining(state.quota_left)

    async def verify(self, elements: Mapping[str, str]) -> tuple[VerifyAnswer, bool]:
        """The answer about `elements` (wire names, `NIK` among them) and whether it came
        from the cache. Questions about one NIK take turns, so the second finds the first's
        answer cached."""
        key = self.cache.key(elements["NIK"])
        while (waiting := self._inflight.get(key)) is not None:
            await asyncio.shield(waiting)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = turn
        try:
            cached = await run_in_threadpool(self.cache.lookup, elements, self.now())
            if cached is not None:
                return cached, True
            answer = await self._ask(elements)
            await run_in_threadpool(
                self.cache.remember, elements, answer, self.now(), self.config.cache_ttl
            )
            return answer, False
        finally:
            self._inflight.pop(key, None)
            turn.set_result(None)

    async def _ask(self, elements: Mapping[str, str]) -> VerifyAnswer:
        now = self.now()
        name = self.config.name
        await self._check_state(now)
        hours = self.config.allowed_hours
        if hours is not None and not hours.contains(now):
            opens = hours.next_open(now)
            raise _not_now(
                "outside_hours",
                f"{name} takes questions from {hours.start:%H:%M} to {hours.end:%H:%M} "
                f"({hours.timezone}) only",
                (opens - now).total_seconds(),
            )
        if not self.breaker.allow():
            raise _not_now(
                "unavailable", f"{name} failed repeatedly; paused", self.breaker.retry_in()
            )
        if self.limiter is not None:
            try:
                await asyncio.wait_for(self.limiter.acquire(), RATE_WAIT)
            except TimeoutError:
                raise _not_now("busy", f"{name} is busy; ask again shortly", 1.0) from None
        if self.quota is not None and not await self.quota.take():
            raise _not_now(
                "quota_exhausted",
                f"today's {name} quota is used up",
                (self.quota.resets_at() - now).total_seconds(),
            )
        try:
            answer = await self.connector.verify(elements)
        except QuotaExhaustedError:
            if self.quota is not None:
                await self.quota.exhaust()
            self.breaker.record_success()
            seconds = (self.quota.resets_at() - now).total_seconds() if self.quota else 3600.0
            raise _not_now("quota_exhausted", f"today's {name} quota is used up", seconds) from None
        except OutsideHoursError as exc:
            self.breaker.record_success()
            seconds = exc.retry_after or (
                (hours.next_open(now) - now).total_seconds() if hours else 900.0
            )
            raise _not_now("outside_hours", f"{name} refuses questions now", seconds) from None
        except RetriableDeliveryError as exc:
            self.breaker.record_failure()
            log.warning("%s verify failed: %s", name, exc)
            raise _not_now(
                "upstream_unavailable", f"{name} did not answer", exc.retry_after or 5.0
            ) from None
        except DeliveryError as exc:
            self.breaker.record_success()
            log.error("%s verify refused: %s", name, exc)
            raise ApiError(
                502, "upstream_error", f"{name} refused the question ({exc.code})"
            ) from None
        self.breaker.record_success()
        if answer.quota_left is not None and self.quota is not None:
            await self.quota.set_remaining(answer.quota_left)
        return answer


def verifier_of(request: Request) -> NikVerifier:
    """The app's verifier, built on first use from the Dukcapil connector of routes.yaml."""
    state = request.app.state
    existing = getattr(state, "nik_verifier", None)
    if isinstance(existing, NikVerifier):
        return existing
    hub = hub_of(request)
    routes = hub.routes
    configs = [] if routes is None else list(routes.connectors.values())
    config = next((c for c in configs if c.adapter == "dukcapil"), None)
    if config is None:
        raise ApiError(503, "unavailable", "no Dukcapil connector is configured (routes.yaml)")
    if config.missing_credentials:
        raise ApiError(503, "unavailable", "the Dukcapil credentials are not set")
    verifier = NikVerifier(
        hub,
        config,
        transport=getattr(state, "nik_transport", None),
        redis_url=hub.settings.redis_url,
    )
    state.nik_verifier = verifier
    return verifier


def _birth_date(text: str) -> str:
    """`YYYY-MM-DD` -> Dukcapil's `DD-MM-YYYY`; 400 otherwise."""
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text).strftime("%d-%m-%Y")
    except ValueError:
        pass
    raise bad_parameter("tanggal_lahir", "tanggal_lahir must be a date, YYYY-MM-DD")


def _audit(
    hub: Hub, actor: str, entity: str, answer: VerifyAnswer, cached: bool, names: list[str]
) -> None:
    with hub.engine.begin() as conn:
        AuditLog.record(
            conn,
            actor=actor,
            action="nik.verified",
            entity_type="nik",
            entity_id=entity,
            details={"code": answer.code, "cached": cached, "elements": names},
        )


async def verify_nik(request: Request) -> Response:
    caller = await authorize(request, "nik:verify")
    nik: str = request.path_params["nik"]
    if not _NIK.fullmatch(nik):
        raise ApiError(422, "invalid", "a NIK is 16 digits", {"parameter": "nik"})
    elements = {"NIK": nik}
    nama = (request.query_params.get("nama") or "").strip()
    if nama:
        if len(nama) > 100 or has_control(nama):
            raise bad_parameter("nama", "nama is text of at most 100 characters")
        elements["NAMA_LGKP"] = nama
    born = (request.query_params.get("tanggal_lahir") or "").strip()
    if born:
        elements["TGL_LHR"] = _birth_date(born)
    if len(elements) == 1:
        raise bad_parameter("nama", "give nama and/or tanggal_lahir to verify against")
    verifier = verifier_of(request)
    answer, cached = await verifier.verify(elements)
    names = sorted(e for e in elements if e != "NIK")
    entity = verifier.cache.key(nik).hex()
    await run_in_threadpool(_audit, hub_of(request), caller.subject, entity, answer, cached, names)
    verdicts = {
        _PARAMETERS.get(element, element.lower()): {"match": v.match, "score": v.score}
        for element, v in answer.verdicts.items()
        if element != "NIK"
    }
    return JSONResponse(
        {"found": answer.code == "00", "code": answer.code, "verdicts": verdicts, "cached": cached}
    )


routes: list[BaseRoute] = [
    Route("/nik/{nik}/verify", verify_nik, methods=["GET"], name="nik:verify"),
]

_ERROR: Final = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


openapi_paths: dict[str, Any] = {
    "/api/v1/nik/{nik}/verify": {
        "get": {
            "operationId": "verifyNik",
            "summary": "Verify a NIK and its holder's name and/or birth date with Dukcapil",
            "description": "Answered from the hub's cache when possible; otherwise within "
            "Dukcapil's allowed hours, rate limit and daily quota. The NIK is never logged.",
            "tags": ["nik"],
            "security": [{"bearer": ["nik:verify"]}],
            "parameters": [
                {
                    "name": "nik",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]{16}$"},
                },
                {"name": "nama", "in": "query", "schema": {"type": "string", "maxLength": 100}},
                {
                    "name": "tanggal_lahir",
                    "in": "query",
                    "schema": {"type": "string", "format": "date"},
                },
            ],
            "responses": {
                "200": {
                    "description": "Dukcapil's answer",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["found", "code", "verdicts", "cached"],
                                "properties": {
                                    "found": {"type": "boolean"},
                                    "code": {
                                        "type": "string",
                                        "description": "00 found; 11 deceased, 12 duplicate, "
                                        "13 not found, 14 inactive, 15 bad format, 08",
                                    },
                                    "verdicts": {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "object",
                                            "properties": {
                                                "match": {"type": "boolean"},
                                                "score": {"type": ["integer", "null"]},
                                            },
                                        },
                                    },
                                    "cached": {"type": "boolean"},
                                },
                            }
                        }
                    },
                },
                "400": _error("Neither nama nor tanggal_lahir, or a bad date"),
                "401": _error("No valid bearer token"),
                "403": _error("Scope nik:verify missing (audited)"),
                "422": _error("The NIK is not 16 digits"),
                "502": _error("Dukcapil refused the question"),
                "503": _error(
                    "Not now: outside allowed hours, quota used up, breaker open, busy, "
                    "connector stopped or not configured (Retry-After when known)"
                ),
            },
        }
    }
}
