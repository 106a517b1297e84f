"""The dispatcher: claims due outbox messages and sends them, within every limit.

One `Lane` per connector of `routes.yaml`: it claims due messages (`FOR UPDATE SKIP LOCKED`
on PostgreSQL, the write lock on SQLite), leases them, and sends up to `concurrency` at once.
Before each call it checks, in order: the connector is not stopped, the allowed hours, the
circuit breaker, the daily quota, the rate limit. A check that says "not now" puts the
message back for later without counting an attempt; nothing is lost.

Each answer is recorded in one transaction with the record's transition (`Flow`) and an
audit event of the attempt (outcome, code, latency). Retriable failures come back after an
exponential backoff with jitter (tenacity's `wait_exponential_jitter`), or after the remote
`Retry-After` when it is longer; after `retry.max_attempts` attempts the message is dead
(`hub dlq`). A fatal answer (login refused, client not registered) stops the connector for
every process until an admin resumes it (`hub outbox resume NAME`).

Exactly-once effect: a message is sent at least once (a crash after sending and before
recording means it is sent again once its lease runs out), always under the same
idempotency key, so the receiver applies it once.

Rate limits and the daily quota are in process by default; with `HUB_REDIS_URL` they live in
Redis and bind every hub process together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import orjson
import sqlalchemy as sa
from opentelemetry.trace import SpanKind
from sqlalchemy.dialects import postgresql, sqlite
from tenacity import RetryCallState, wait_exponential_jitter

from adapters.base import Connector, Deliverer, OutboundEvent, Verifier, VerifyAnswer
from hub.answers import AnswerCache
from hub.audit import AuditLog, utc_timestamp
from hub.breaker import CircuitBreaker
from hub.connectors import build_connector, wire_elements
from hub.context import Hub
from hub.errors import (
    DeliveryError,
    FatalDeliveryError,
    OutsideHoursError,
    QuotaExhaustedError,
    RejectedRecordError,
    RetriableDeliveryError,
)
from hub.flow import Flow, event_key
from hub.limits import DailyQuota, RateLimiter, build_daily_quota, build_rate_limiter
from hub.observe.metrics import (
    BREAKER_OPEN,
    CONNECTOR_CALLS,
    CONNECTOR_SECONDS,
    RATE_LIMIT_WAIT,
)
from hub.observe.tracing import span
from hub.routes import ConnectorConfig, DeliverStep, RetryPolicy, RoutesConfig, VerifyStep
from hub.store.tables import connector_state, outbox

log = logging.getLogger("hub.dispatcher")

T = TypeVar("T")
Clock = Callable[[], dt.datetime]

#: A claimed message stays ours for three connector timeouts plus this margin (waits for a
#: slot and for the rate limit included); after a crash, another worker takes it over then.
LEASE_MARGIN: Final = 10.0
#: A stopped or paused connector is looked at again after this many seconds.
STATE_POLL: Final = 2.0
#: Requests leave this much under the configured rate, so that network jitter cannot bunch
#: them above the limit as the remote system measures it (see `hub.limits`).
RATE_HEADROOM: Final = 0.04


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def backoff(policy: RetryPolicy, attempt: int) -> float:
    """Seconds before attempt `attempt + 1`, by tenacity's exponential backoff with jitter."""
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    wait = wait_exponential_jitter(
        multiplier=policy.initial, max=policy.maximum, jitter=policy.jitter
    )
    return float(wait(state))


class _Defer(Exception):
    """Not now: put the message back until `until`, without counting an attempt."""

    def __init__(self, until: dt.datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


@dataclass
class DispatchStats:
    """What one `Dispatcher.run` did, per outcome."""

    counts: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.counts)


@dataclass
class Lane:
    """One connector's queue, limits, breaker and client inside one process."""

    config: ConnectorConfig
    connector: Connector
    limiter: RateLimiter | None
    quota: DailyQuota | None
    breaker: CircuitBreaker
    slots: asyncio.Semaphore
    paused_until: dt.datetime | None = None
    stopped: str | None = None
    pending: set[asyncio.Task[None]] = field(default_factory=set)
    inflight_answers: dict[bytes, asyncio.Future[None]] = field(default_factory=dict)
    state_written_at: float = 0.0

    @property
    def name(self) -> str:
        return self.config.name


class Dispatcher:
    """Sends due outbox messages of every connector until stopped (or idle).

    ```python
    dispatcher = Dispatcher(hub, routes)
    await dispatcher.run(until_idle=True)      # the demo, tests
    await dispatcher.run(stop=stop_event)      # `hub worker`
    ```
    `connectors` replaces the clients built from `routes.yaml` (tests pass clients on an
    in-process transport); `now` replaces the clock for hours and quota days.
    """

    def __init__(
        self,
        hub: Hub,
        routes: RoutesConfig,
        *,
        connectors: Mapping[str, Connector] | None = None,
        worker_id: str | None = None,
        redis_url: str | None = None,
        redis_prefix: str = "hub:",
        poll_interval: float = 0.2,
        now: Clock = utc_now,
    ) -> None:
        self.hub = hub
        self.routes = routes
        self.flow = Flow(routes, hub.schemas, hub.protector, hub.messages, now=now)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.redis_url = redis_url if redis_url is not None else hub.settings.redis_url
        self.redis_prefix = redis_prefix
        self.poll_interval = poll_interval
        self.now = now
        self.stats = DispatchStats()
        self._given = dict(connectors or {})
        # Field names (never values) of the event being delivered per job, for its audit.
        self._sent_fields: dict[int, list[str]] = {}
        self._lanes: dict[str, Lane] = {}
        self._redis: Any = None

    # ------------------------------------------------------------------ running

    async def run(self, *, stop: asyncio.Event | None = None, until_idle: bool = False) -> None:
        """Run every lane until `stop` is set, or, with `until_idle`, until no message is
        in flight and none is due within a poll."""
        stop = stop or asyncio.Event()
        await self._open()
        try:
            lanes = [
                asyncio.create_task(self._run_lane(lane, stop)) for lane in self._lanes.values()
            ]
            if until_idle:
                while not stop.is_set():
                    await asyncio.sleep(self.poll_interval)
                    if await asyncio.to_thread(self._idle):
                        stop.set()
            await asyncio.gather(*lanes)
        finally:
            await self._close()

    async def _open(self) -> None:
        if self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(self.redis_url)
        for name, config in self.routes.connectors.items():
            connector = self._given.get(name) or build_connector(config)
            limiter = None
            if config.rate_limit is not None:
                limiter = build_rate_limiter(
                    name,
                    config.rate_limit.per_second,
                    config.rate_limit.burst,
                    self._redis,
                    self.redis_prefix,
                    headroom=RATE_HEADROOM,
                )
            quota = None
            if config.daily_quota is not None:
                q = config.daily_quota
                quota = build_daily_quota(
                    name,
                    q.limit,
                    q.resets_at,
                    q.timezone,
                    self._redis,
                    self.redis_prefix,
                    now=self.now,
                )
                await self._restore_quota(name, quota)
            policy = config.circuit_breaker
            self._lanes[name] = Lane(
                config=config,
                connector=connector,
                limiter=limiter,
                quota=quota,
                breaker=CircuitBreaker(policy.failure_threshold, policy.reset_after),
                slots=asyncio.Semaphore(config.concurrency),
            )

    async def _restore_quota(self, name: str, quota: DailyQuota) -> None:
        """Carry today's count over from the last run (an in-process quota starts full)."""
        with self.hub.engine.connect() as conn:
            row = conn.execute(
                sa.select(connector_state.c.quota_left, connector_state.c.quota_resets_at).where(
                    connector_state.c.connector == name
                )
            ).one_or_none()
        if row is None or row.quota_left is None or row.quota_resets_at is None:
            return
        if row.quota_resets_at == utc_timestamp(quota.resets_at()):  # the same quota day
            await quota.set_remaining(row.quota_left)

    async def _close(self) -> None:
        for lane in self._lanes.values():
            if lane.pending:
                await asyncio.gather(*lane.pending, return_exceptions=True)
            if lane.name not in self._given:
                await lane.connector.aclose()
            await self._publish(lane, force=True)
        self._lanes.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _run_lane(self, lane: Lane, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self._read_state, lane)
            now = self.now()
            if lane.stopped is not None or (lane.paused_until and lane.paused_until > now):
                await _sleep_or_stop(stop, STATE_POLL)
                continue
            free = lane.config.concurrency * 2 - len(lane.pending)
            jobs = await asyncio.to_thread(self._claim, lane, free) if free > 0 else []
            for job in jobs:
                task = asyncio.create_task(self._process(lane, job))
                lane.pending.add(task)
                task.add_done_callback(lane.pending.discard)
            if not jobs:
                await _sleep_or_stop(stop, self.poll_interval)
            elif free <= len(jobs):
                await asyncio.wait(lane.pending, return_when=asyncio.FIRST_COMPLETED)
            await self._publish(lane)
        if lane.pending:
            await asyncio.gather(*lane.pending, return_exceptions=True)

    def _idle(self) -> bool:
        horizon = utc_timestamp(self.now() + dt.timedelta(seconds=self.poll_interval))
        if any(lane.pending for lane in self._lanes.values()):
            return False
        now = self.now()
        running = [  # a stopped or paused connector has nothing due until somebody acts
            name
            for name, lane in self._lanes.items()
            if lane.stopped is None and not (lane.paused_until and lane.paused_until > now)
        ]
        with self.hub.engine.connect() as conn:
            busy = conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(
                    outbox.c.connector.in_(running),
                    sa.or_(
                        outbox.c.status == "in_flight",
                        sa.and_(outbox.c.status == "queued", outbox.c.next_attempt_at <= horizon),
                    ),
                )
            ).scalar_one()
        return int(busy) == 0

    # ------------------------------------------------------------------ claiming

    def _claim(self, lane: Lane, limit: int) -> list[list[Any]]:
        """Lease up to `limit` due messages of `lane`; family members come along, and each
        job (a list of rows) is one event."""
        now = self.now()
        stamp = utc_timestamp(now)
        lease = utc_timestamp(now + dt.timedelta(seconds=lane.config.timeout * 3 + LEASE_MARGIN))
        due_clause = sa.or_(
            sa.and_(outbox.c.status == "queued", outbox.c.next_attempt_at <= stamp),
            sa.and_(outbox.c.status == "in_flight", outbox.c.lease_until < stamp),
        )
        with self.hub.engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            if not postgres:
                conn.exec_driver_sql("SELECT 1")  # open the transaction before reading
            query = (
                sa.select(outbox)
                .where(outbox.c.connector == lane.name, due_clause)
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(limit)
            )
            if postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(conn.execute(query).all())
            if not rows:
                return []
            rows = self._with_family(conn, lane, rows, postgres)
            jobs = _jobs(rows)
            for job in jobs:
                key = job[0].event_key or (
                    job[0].idempotency_key
                    if len(job) == 1
                    else event_key(r.idempotency_key for r in job)
                )
                conn.execute(
                    outbox.update()
                    .where(outbox.c.id.in_([r.id for r in job]))
                    .values(
                        status="in_flight",
                        lease_until=lease,
                        claimed_by=self.worker_id,
                        event_key=key,
                        updated_at=stamp,
                    )
                )
            ids = [r.id for job in jobs for r in job]
            fresh = {r.id: r for r in conn.execute(sa.select(outbox).where(outbox.c.id.in_(ids)))}
        return [[fresh[r.id] for r in job] for job in jobs]

    def _with_family(
        self, conn: sa.Connection, lane: Lane, rows: list[Any], postgres: bool
    ) -> list[Any]:
        """Add the queued family members of claimed deliveries (same group, not yet in an
        event) and the other rows of events already formed."""
        have = {r.id for r in rows}
        groups = {r.group_key for r in rows if r.group_key is not None and r.event_key is None}
        events = {r.event_key for r in rows if r.event_key is not None}
        extra: list[Any] = []
        if groups:
            query = sa.select(outbox).where(
                outbox.c.connector == lane.name,
                outbox.c.group_key.in_(groups),
                outbox.c.event_key.is_(None),
                outbox.c.status == "queued",
            )
            extra += conn.execute(query.with_for_update(skip_locked=True) if postgres else query)
        if events:
            query = sa.select(outbox).where(
                outbox.c.event_key.in_(events), outbox.c.status.in_(["queued", "in_flight"])
            )
            extra += conn.execute(query.with_for_update(skip_locked=True) if postgres else query)
        for row in extra:
            if row.id not in have:
                have.add(row.id)
                rows.append(row)
        return rows

    # ------------------------------------------------------------------ processing

    async def _process(self, lane: Lane, job: list[Any]) -> None:
        async with lane.slots:
            try:
                await self._attempt(lane, job)
            except Exception:  # a bug must not kill the lane; the lease brings the job back
                log.exception("dispatching outbox %s failed unexpectedly", [r.id for r in job])
                self.stats.counts["crashed"] += 1

    async def _attempt(self, lane: Lane, job: list[Any]) -> None:
        started = time.perf_counter()
        attributes = {
            "connector": lane.name,
            "outbox.kind": job[0].kind,
            "outbox.id": job[0].id,
            "outbox.attempt": job[0].attempts + 1,
            "outbox.messages": len(job),
        }
        with span(f"{lane.name} {job[0].kind}", attributes):
            try:
                if job[0].kind == "verify":
                    await self._verify(lane, job[0])
                else:
                    await self._deliver(lane, job)
                self.stats.counts["done"] += 1
            except _Defer as defer:
                self.stats.counts["deferred"] += 1
                CONNECTOR_CALLS.labels(lane.name, job[0].kind, "deferred").inc()
                await asyncio.to_thread(self._put_back, job, defer.until, defer.reason)
            except DeliveryError as exc:
                latency = (time.perf_counter() - started) * 1000
                await asyncio.to_thread(self._failed, lane, job, exc, latency)
            finally:
                BREAKER_OPEN.labels(lane.name).set(1 if lane.breaker.state == "open" else 0)

    async def _call(self, lane: Lane, send: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        """Run one remote call inside the lane's limits; returns (answer, latency in ms)."""
        now = self.now()
        config = lane.config
        if config.allowed_hours is not None and not config.allowed_hours.contains(now):
            until = config.allowed_hours.next_open(now)
            self._pause(lane, until, "outside allowed hours")
            raise _Defer(until, "outside allowed hours")
        if not lane.breaker.allow():
            raise _Defer(now + dt.timedelta(seconds=max(lane.breaker.retry_in(), 0.1)), "breaker")
        if lane.quota is not None and not await lane.quota.take():
            until = lane.quota.resets_at()
            self._pause(lane, until, "daily quota used up")
            raise _Defer(until, "daily quota used up")
        if lane.limiter is not None:
            waited = time.perf_counter()
            await lane.limiter.acquire()
            RATE_LIMIT_WAIT.labels(lane.name).inc(time.perf_counter() - waited)
        started = time.perf_counter()
        try:
            with span(f"{lane.name} call", {"connector": lane.name}, kind=SpanKind.CLIENT):
                answer = await send()
        except QuotaExhaustedError:
            if lane.quota is not None:
                await lane.quota.exhaust()
            until = lane.quota.resets_at() if lane.quota is not None else _tomorrow(now)
            self._pause(lane, until, "daily quota used up (remote code 05)")
            lane.breaker.record_success()
            raise _Defer(until, "daily quota used up (remote)") from None
        except OutsideHoursError as exc:
            hours = config.allowed_hours
            until = (
                hours.next_open(now)
                if hours is not None
                else now + dt.timedelta(seconds=exc.retry_after or 900)
            )
            self._pause(lane, until, "outside allowed hours (remote code 06)")
            lane.breaker.record_success()
            raise _Defer(until, "outside allowed hours (remote)") from None
        except RetriableDeliveryError:
            lane.breaker.record_failure()
            raise
        except DeliveryError:
            lane.breaker.record_success()  # the remote answered: it is up
            raise
        lane.breaker.record_success()
        latency = (time.perf_counter() - started) * 1000
        self.stats.latencies_ms.append(latency)
        CONNECTOR_SECONDS.labels(lane.name).observe(latency / 1000)
        return answer, latency

    def _pause(self, lane: Lane, until: dt.datetime, reason: str) -> None:
        if lane.paused_until is None or until > lane.paused_until:
            lane.paused_until = until
            log.warning("connector %s paused until %s: %s", lane.name, until.isoformat(), reason)

    # ------------------------------------------------------------------ verify

    async def _verify(self, lane: Lane, message: Any) -> None:
        verifier = lane.connector
        if not isinstance(verifier, Verifier):
            raise FatalDeliveryError(f"connector {lane.name} cannot verify")
        row, values = await asyncio.to_thread(self._record, message.record_id)
        route = self.routes.route(row.route) if row.route else None
        step = route.steps[message.step] if route and message.step < len(route.steps) else None
        if row.version != message.record_version or not isinstance(step, VerifyStep):
            await asyncio.to_thread(self._finish_stale, message)
            return
        answers: list[tuple[Any, VerifyAnswer | None]] = []
        calls: list[dict[str, Any]] = []
        schema = self.hub.schemas.get(row.record_type, row.schema_version)
        failed = False
        for subject in step.subjects:
            nik = values.get(subject.nik)
            if nik is None or failed:  # once one NIK fails, the rest need not spend quota
                answers.append((subject, None))
                continue
            elements = wire_elements(str(nik), subject.elements, values)
            answer, call = await self._ask(lane, verifier, elements)
            answers.append((subject, answer))
            failed = self.flow.judge(schema, step, subject, answer)[0] == "verify_failed"
            if call is not None:
                calls.append(call)
        await asyncio.to_thread(self._finish_verify, lane, message, answers, calls)

    async def _ask(
        self, lane: Lane, verifier: Verifier, elements: Mapping[str, str]
    ) -> tuple[VerifyAnswer, dict[str, Any] | None]:
        """One NIK's answer: from the cache, or asked now. Questions about one NIK take turns
        in this process, so a second one finds the first's answer in the cache."""
        cache = AnswerCache(self.hub.engine, self.hub.protector, lane.name)
        request = cache.key(elements["NIK"])
        while (waiting := lane.inflight_answers.get(request)) is not None:
            await asyncio.shield(waiting)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.inflight_answers[request] = turn
        try:
            cached = await asyncio.to_thread(cache.lookup, elements, self.now())
            if cached is not None:
                self.stats.counts["cache_hit"] += 1
                return cached, None
            answer, latency = await self._call(lane, lambda: verifier.verify(elements))
            if answer.quota_left is not None and lane.quota is not None:
                await lane.quota.set_remaining(answer.quota_left)
            ttl = lane.config.cache_ttl
            await asyncio.to_thread(cache.remember, elements, answer, self.now(), ttl)
        finally:
            lane.inflight_answers.pop(request, None)
            turn.set_result(None)
        self.stats.counts["verify_call"] += 1
        return answer, {"code": answer.code, "latency_ms": round(latency, 1)}

    def _finish_verify(
        self,
        lane: Lane,
        message: Any,
        answers: Sequence[tuple[Any, VerifyAnswer | None]],
        calls: list[dict[str, Any]],
    ) -> None:
        with self.hub.engine.begin() as conn:
            if not self._still_ours(conn, [message]):
                return
            status = self.flow.verified(conn, message, answers, actor=f"connector:{lane.name}")
            self._mark_done(conn, [message], "00")
            self._audit_attempt(conn, lane, [message], "ok", {"calls": calls, "status": status})

    def _finish_stale(self, message: Any) -> None:
        with self.hub.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.id == message.id)
                .values(status="superseded", updated_at=utc_timestamp(self.now()))
            )

    # ------------------------------------------------------------------ deliver

    async def _deliver(self, lane: Lane, job: list[Any]) -> None:
        deliverer = lane.connector
        if not isinstance(deliverer, Deliverer):
            raise FatalDeliveryError(f"connector {lane.name} cannot deliver")
        event = await asyncio.to_thread(self._event, job)
        if event is None:
            return
        ack, latency = await self._call(lane, lambda: deliverer.deliver(event))
        details = {
            "status": ack.status,
            "duplicate": ack.duplicate,
            "latency_ms": round(latency, 1),
            "summary": ack.summary[:200],
        }
        await asyncio.to_thread(self._finish_deliver, lane, job, details)

    def _event(self, job: list[Any]) -> OutboundEvent | None:
        first = job[0]
        payloads = []
        record_type = ""
        version = 0
        for message in job:
            row, values = self._record(message.record_id)
            if row.version != message.record_version:
                self._finish_stale(message)
                continue
            route = self.routes.route(row.route)
            step = route.steps[message.step]
            assert isinstance(step, DeliverStep)
            allowed = self.routes.deliver_fields(step, row.record_type)
            payloads.append({k: values[k] for k in allowed if values.get(k) is not None})
            record_type, version = row.record_type, max(version, row.version)
        if not payloads:
            return None
        self._sent_fields[first.id] = sorted({name for payload in payloads for name in payload})
        return OutboundEvent(
            record_type=record_type,
            idempotency_key=first.event_key,
            kind="correction" if any(m.correction for m in job) else "create",
            version=version,
            records=payloads,
        )

    def _finish_deliver(self, lane: Lane, job: list[Any], details: dict[str, Any]) -> None:
        with self.hub.engine.begin() as conn:
            if not self._still_ours(conn, job):
                return
            self._mark_done(conn, job, str(details["status"]))
            self.flow.delivery_settled(conn, [m.record_id for m in job])
            self._audit_attempt(conn, lane, job, "ok", details)

    # ------------------------------------------------------------------ outcomes

    def _record(self, record_id: int) -> tuple[Any, dict[str, Any]]:
        from hub.store.tables import records

        with self.hub.engine.connect() as conn:
            row = conn.execute(sa.select(records).where(records.c.id == record_id)).one()
        return row, self.flow.values(row)

    def _still_ours(self, conn: sa.Connection, job: Sequence[Any]) -> bool:
        """True when this claim still holds every message of the job: its lease did not run
        out and pass the message to another worker, or to this same worker again (a claim
        is told apart by its lease, written once per claim)."""
        held = conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(
                outbox.c.id.in_([m.id for m in job]),
                outbox.c.status == "in_flight",
                outbox.c.claimed_by == self.worker_id,
                outbox.c.lease_until == job[0].lease_until,
            )
        ).scalar_one()
        return int(held) == len(job)

    def _mark_done(self, conn: sa.Connection, job: Sequence[Any], code: str) -> None:
        stamp = utc_timestamp(self.now())
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_([m.id for m in job]))
            .values(
                status="done",
                attempts=outbox.c.attempts + 1,
                last_code=code,
                last_error=None,
                lease_until=None,
                updated_at=stamp,
                done_at=stamp,
            )
        )

    def _put_back(self, job: Sequence[Any], until: dt.datetime, reason: str) -> None:
        with self.hub.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(
                    outbox.c.id.in_([m.id for m in job]),
                    outbox.c.claimed_by == self.worker_id,
                    outbox.c.lease_until == job[0].lease_until,  # this claim's, still
                    outbox.c.status == "in_flight",
                )
                .values(
                    status="queued",
                    next_attempt_at=utc_timestamp(until),
                    lease_until=None,
                    claimed_by=None,
                    last_error=reason,
                    updated_at=utc_timestamp(self.now()),
                )
            )

    def _failed(self, lane: Lane, job: list[Any], exc: DeliveryError, latency: float) -> None:
        attempts = job[0].attempts + 1
        summary = _summary(exc)
        details: dict[str, Any] = {
            "error": type(exc).__name__,
            "code": exc.code,
            "latency_ms": round(latency, 1),
            "summary": summary,
        }
        now = self.now()
        with self.hub.engine.begin() as conn:
            if not self._still_ours(conn, job):
                return
            if isinstance(exc, FatalDeliveryError):
                self.stats.counts["fatal"] += 1
                lane.stopped = summary
                self._set_stopped(conn, lane.name, summary)
                self._requeue(conn, job, now, summary, exc.code, count=False)
                self._audit_attempt(conn, lane, job, "fatal", details)
                AuditLog.record(
                    conn,
                    actor=f"worker:{self.worker_id}",
                    action="connector.stopped",
                    entity_type="connector",
                    entity_id=lane.name,
                    details={"code": exc.code, "reason": summary},
                )
                log.error("connector %s STOPPED (%s): an admin must resume it", lane.name, summary)
                return
            retriable = isinstance(exc, RetriableDeliveryError)
            if retriable and attempts < lane.config.retry.max_attempts:
                self.stats.counts["retry"] += 1
                wait = backoff(lane.config.retry, attempts)
                retry_after = getattr(exc, "retry_after", None)
                if retry_after:
                    wait = max(wait, float(retry_after))
                self._requeue(conn, job, now + dt.timedelta(seconds=wait), summary, exc.code)
                self._audit_attempt(conn, lane, job, "retry", {**details, "wait_s": round(wait, 2)})
                return
            self.stats.counts["dead"] += 1
            outcome = "rejected" if isinstance(exc, RejectedRecordError) else "dead"
            conn.execute(
                outbox.update()
                .where(outbox.c.id.in_([m.id for m in job]))
                .values(
                    status="dead",
                    attempts=attempts,
                    last_code=exc.code,
                    last_error=summary,
                    lease_until=None,
                    claimed_by=None,
                    updated_at=utc_timestamp(now),
                )
            )
            for message in job:
                if message.kind == "verify":
                    self.flow.verification_dead(conn, message, summary)
            self.flow.delivery_settled(conn, [m.record_id for m in job if m.kind == "deliver"])
            self._audit_attempt(conn, lane, job, outcome, details)

    def _requeue(
        self,
        conn: sa.Connection,
        job: Sequence[Any],
        when: dt.datetime,
        summary: str,
        code: str | None,
        *,
        count: bool = True,
    ) -> None:
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_([m.id for m in job]))
            .values(
                status="queued",
                attempts=outbox.c.attempts + (1 if count else 0),
                next_attempt_at=utc_timestamp(when),
                last_code=code,
                last_error=summary,
                lease_until=None,
                claimed_by=None,
                updated_at=utc_timestamp(self.now()),
            )
        )

    def _audit_attempt(
        self,
        conn: sa.Connection,
        lane: Lane,
        job: Sequence[Any],
        outcome: str,
        details: Mapping[str, Any],
    ) -> None:
        CONNECTOR_CALLS.labels(lane.name, job[0].kind, outcome).inc()
        AuditLog.record(
            conn,
            actor=f"worker:{self.worker_id}",
            action=f"outbox.{job[0].kind}.{outcome}",
            entity_type="outbox",
            entity_id=str(job[0].id),
            details={
                "connector": lane.name,
                "messages": [m.id for m in job],
                "records": [m.record_id for m in job],
                "attempt": job[0].attempts + 1,
                "event_key": job[0].event_key,
                **details,
                # Minimisation, audited: the names of the fields this attempt sent.
                **(
                    {"fields": self._sent_fields.pop(job[0].id, [])}
                    if job[0].kind == "deliver"
                    else {}
                ),
            },
        )

    # ------------------------------------------------------------------ connector state

    def _read_state(self, lane: Lane) -> None:
        with self.hub.engine.connect() as conn:
            row = conn.execute(
                sa.select(connector_state).where(connector_state.c.connector == lane.name)
            ).one_or_none()
        if row is not None and row.state == "stopped":
            lane.stopped = row.reason or "stopped"
        else:
            lane.stopped = None

    def _set_stopped(self, conn: sa.Connection, name: str, reason: str) -> None:
        _upsert_state(conn, name, state="stopped", reason=reason, updated_at=utc_timestamp())

    async def _publish(self, lane: Lane, *, force: bool = False) -> None:
        """Publish this process's view (breaker, quota, pause) for `hub outbox status`,
        at most once a second."""
        clock = time.monotonic()
        if not force and clock - lane.state_written_at < 1.0:
            return
        lane.state_written_at = clock
        left = await lane.quota.remaining() if lane.quota is not None else None
        await asyncio.to_thread(self._write_state, lane, left)

    def _write_state(self, lane: Lane, quota_left: int | None) -> None:
        now = self.now()
        paused = lane.paused_until if lane.paused_until and lane.paused_until > now else None
        values: dict[str, Any] = {
            "paused_until": utc_timestamp(paused) if paused else None,
            "breaker": orjson.dumps(lane.breaker.snapshot()).decode(),
            "updated_at": utc_timestamp(now),
        }
        if lane.quota is not None:
            values["quota_resets_at"] = utc_timestamp(lane.quota.resets_at())
            values["quota_left"] = quota_left
        with self.hub.engine.begin() as conn:
            if lane.stopped is None:
                values["state"] = "paused" if paused else "running"
            _upsert_state(conn, lane.name, **values)


def _upsert_state(conn: sa.Connection, name: str, **values: Any) -> None:
    """Insert or update a connector's state in one statement, so two workers publishing a
    connector's first state at once cannot both insert."""
    insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
        connector_state
    )
    row = {"connector": name, "state": "running", **values}
    conn.execute(
        insert.values(**row).on_conflict_do_update(
            index_elements=["connector"], set_={k: insert.excluded[k] for k in values}
        )
    )


def _jobs(rows: Sequence[Any]) -> list[list[Any]]:
    """Claimed rows as jobs: rows of one event or one family group together."""
    jobs: dict[Any, list[Any]] = {}
    for row in rows:
        if row.event_key is not None:
            key: Any = ("event", row.event_key)
        elif row.group_key is not None and row.kind == "deliver":
            key = ("group", row.group_key)
        else:
            key = ("row", row.id)
        jobs.setdefault(key, []).append(row)
    return list(jobs.values())


def _summary(exc: DeliveryError) -> str:
    text = str(exc)
    if exc.response:
        text = f"{text} ({exc.response})"
    return text[:500]


def _tomorrow(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(days=1)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
