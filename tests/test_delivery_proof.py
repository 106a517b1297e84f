"""The delivery proofs, run in CI every time: under injected faults, after a crash and under a
shared rate limit, every record reaches SIAK exactly once and nothing is lost.

The scenarios live in `bench.delivery_scenarios` (shared with `python -m bench.delivery`, which
runs them at full size and prints the figures); these tests run them small enough for CI,
except the fault injection, which runs at its full 5,000 records. The longest test comes first,
next to the shortest: `pytest -n 2` hands each worker two neighbours.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench import delivery_scenarios as scenarios
from bench.delivery_scenarios import FaultMix, Outcome
from hub.audit import utc_timestamp
from hub.dispatcher import RATE_HEADROOM
from hub.limits import RedisRateLimiter
from hub.store.tables import connector_state
from tests.conftest import ARRIVAL_SLACK, MANY_PROCESSES

pytestmark = MANY_PROCESSES

FAULT_RECORDS = 5000
CRASH_RECORDS = 800
RATE_RECORDS = 600
RATE_WORKERS = 3
#: A Redis logical database of its own: `hub worker` keys its limiter `hub:rate:siak`.
RATE_REDIS_DB = 14
#: about 30 % of all requests fail (see `FaultMix`)
FAULTS = FaultMix()


def assert_delivered_exactly_once(outcome: Outcome) -> None:
    n = outcome.records
    assert outcome.statuses == {"delivered": n}
    assert outcome.siak["effects"] == n
    assert outcome.siak["identities"] == n
    assert outcome.siak["identities_applied_more_than_once"] == 0
    assert outcome.dead_letters == 0
    assert outcome.audit.get("outbox.deliver.ok") == n
    assert len(outcome.delivery_ms) == n
    assert outcome.chain_ok


def test_under_injected_faults_every_record_is_delivered_once_and_every_attempt_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = scenarios.fault_injection(tmp_path, monkeypatch, FAULT_RECORDS, mix=FAULTS)

    assert_delivered_exactly_once(outcome)
    assert outcome.dispatch.get("crashed", 0) == 0
    # the faults happened, of every kind, on both systems: about 30 % of all requests
    injected = outcome.injected()
    for system in ("siak", "dukcapil"):
        for kind in ("5xx", "timeout", "reset"):
            assert injected.get(f"{system} {kind}", 0) > 0, (system, kind, injected)
    assert injected.get("siak 429", 0) + injected.get("dukcapil 429", 0) > 0, injected
    requests = outcome.siak["requests"] + outcome.dukcapil["requests"]  # type: ignore[index]
    assert 0.2 <= sum(injected.values()) / requests <= 0.5, injected
    # a stalled or cut request was applied by SIAK all the same: its retry got 409
    assert outcome.siak["duplicates"] > 0
    assert outcome.retries == outcome.dispatch["retry"] > 0

    # Every events request SIAK received is one attempt, audited in the transaction that
    # recorded its outcome (ok, retry; rejected, dead and fatal never happen here):
    # - 429, 503, resets and timeouts each end one attempt as `outbox.deliver.retry`,
    #   a 201 or 409 as `outbox.deliver.ok`;
    # - nothing is sent without an attempt: limits, hours, quota and the breaker defer a
    #   message BEFORE the request (the breaker never opens here, threshold 1000);
    # - nothing is sent twice in one attempt: only a 401 would repeat the POST with a new
    #   token, and each dispatcher run fetched one token, valid for an hour;
    # - no outcome is dropped: a worker whose lease ran out would not record it, but the
    #   lease (3 x 0.5 s + 10 s) is far above an attempt (0.5 s at most before the timeout).
    assert outcome.siak["token_requests"] <= outcome.dispatch["rounds"]
    assert outcome.siak["by_status"].get("401", 0) == 0
    # (A request that timed out or lost its connection on the hub's side may have died before
    # SIAK read it when the host is very busy, and an attempt whose token request failed sent
    # none: only those may be audited and not counted.)
    audited = outcome.audited("outbox.deliver.")
    assert (
        outcome.siak["requests"]
        <= audited
        <= outcome.siak["requests"] + (outcome.unsure_deliveries)
    ), (audited, outcome.siak["requests"], outcome.unsure_deliveries)
    # so every request but each record's last one was a failed attempt, queued again; each
    # injected failure is one of them (the rest: answers slower than the 0.5 s timeout)
    retried = outcome.audit["outbox.deliver.retry"]
    assert 0 <= retried - (outcome.siak["requests"] - FAULT_RECORDS) <= outcome.unsure_deliveries
    assert retried >= sum(n for k, n in injected.items() if k.startswith("siak "))


@pytest.mark.service
def test_the_shared_siak_limit_is_used_to_95_percent_when_wake_ups_are_a_little_late(
    redis_url: str, redis_prefix: str
) -> None:
    """Three limiters on one Redis key, as three `hub worker` processes build them, each
    with four senders. A sleeping limiter wakes up 1 ms after its slot is due: asyncio's
    timers under epoll have millisecond resolution, and a busy host adds to that. The
    issue's target is still 95 % of the limit."""
    import redis.asyncio as aioredis

    limit, seconds = scenarios.SIAK_RATE, 3.0

    async def late(wait: float) -> None:
        await asyncio.sleep(wait + 0.001)

    async def run() -> list[float]:
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(3)]
        key = f"{redis_prefix}rate:siak"
        limiters = [
            RedisRateLimiter(c, key, limit, 1, headroom=RATE_HEADROOM, sleep=late) for c in clients
        ]
        grants: list[float] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds

        async def sender(limiter: RedisRateLimiter) -> None:
            while loop.time() < end:
                grants.append(await limiter.acquire_at())
                await asyncio.sleep(0.01)  # the request, before the next one

        try:
            await asyncio.gather(*(sender(lim) for lim in limiters for _ in range(4)))
        finally:
            await clients[0].delete(key)
            for c in clients:
                await c.aclose()
        return sorted(grants)

    grants = asyncio.run(run())
    window = max(sum(1 for g in grants if t <= g < t + 1.0) for t in grants)
    assert window <= limit  # the bound holds either way
    utilisation = (len(grants) - 1) / (grants[-1] - grants[0])
    assert utilisation >= 0.95 * limit, utilisation


def test_after_a_worker_is_killed_mid_run_every_record_is_delivered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = scenarios.crash(tmp_path, monkeypatch, CRASH_RECORDS)

    assert_delivered_exactly_once(outcome)
    # killed with about a third delivered and messages still claimed by the dead worker
    assert CRASH_RECORDS // 3 <= outcome.notes["accepted at kill"] < CRASH_RECORDS
    assert outcome.notes["in flight at kill"] > 0
    # whatever SIAK got twice (sent by the dead worker, unrecorded) it applied once: 409
    answered = outcome.siak["by_status"]
    assert set(answered) <= {"201", "409"}, answered
    assert outcome.siak["accepted"] == CRASH_RECORDS
    assert sum(answered.values()) == CRASH_RECORDS + outcome.siak["duplicates"]
    # a request the kill cut off mid-upload arrived but was never answered
    cut = outcome.siak["requests"] - sum(answered.values())
    assert 0 <= cut <= outcome.notes["in flight at kill"]


def steady_rate(per_second: Mapping[str, int]) -> float:
    """Arrivals per second over the whole seconds between the first and the last one (epoch
    seconds as keys; a second without arrivals counts as 0)."""
    counts = {int(second): n for second, n in per_second.items()}
    inner = range(min(counts) + 1, max(counts))
    assert len(inner) >= 5, per_second  # a run long enough to have a steady part
    return sum(counts.get(second, 0) for second in inner) / len(inner)


@pytest.mark.service
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_workers_share_the_siak_rate_limit_and_never_exceed_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    redis_url: str,
    record_property: pytest.RecordProperty,
) -> None:
    limit = scenarios.SIAK_RATE
    redis_db = scenarios.redis_database(redis_url, RATE_REDIS_DB)
    outcome = scenarios.rate(
        tmp_path, monkeypatch, database_url, redis_db, RATE_RECORDS, workers=RATE_WORKERS
    )
    record_property("utilisation", outcome.utilisation)

    assert_delivered_exactly_once(outcome)
    assert outcome.siak["requests"] == RATE_RECORDS  # no 429, no retry: nothing over the limit
    assert all(done > 0 for done in outcome.notes["done per worker"]), outcome.notes
    # Arrivals are stamped by the simulator's thread in this process: on two cores shared with
    # the other test worker, a stall of that thread bunches the stamps of requests the limiter
    # granted apart (seen once in CI: 51 in a window). One request of slack absorbs that and
    # still catches a limit that is not shared (three workers would send about 150/s). The
    # exact bound on grants is test_limits' three-process test; bench.delivery reports the
    # worst window on a quiet machine.
    assert outcome.siak["max_in_any_1s_window"] <= limit + ARRIVAL_SLACK
    # The limit is used, not merely respected. How much of it is a speed, measured where speed
    # belongs: bench.delivery, on a quiet machine, 95 % and more. Here the two cores are shared
    # with the other test worker, and a slow hour starved the three workers to 40.8/s (whole
    # seconds). What this proof must catch is a limit that is not shared but split: each of
    # the three workers held to a third would deliver about 16/s. Half the limit, over the whole
    # seconds of the run (the first and the last are partial), tells the two apart.
    assert outcome.utilisation is not None
    steady = steady_rate(outcome.siak["per_second"])
    assert steady >= 0.5 * limit, (steady, outcome.siak["per_second"])


@pytest.mark.service
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_publishing_a_connectors_first_state_at_once_both_succeed(
    engine: sa.Engine,
) -> None:
    """Three workers starting on a fresh store publish each connector's first state at
    once. With UPDATE-then-INSERT both would INSERT and the second would die on the unique
    key (fixed in 6e9e0e5 by one upsert); this pins the interleaving that broke."""
    from hub.dispatcher import _upsert_state

    first = engine.connect()
    transaction = first.begin()
    _upsert_state(first, "siak", updated_at=utc_timestamp())  # inserted, not yet committed
    xid = first.exec_driver_sql("SELECT pg_current_xact_id()::text").scalar_one()
    errors: list[BaseException] = []

    def second_worker() -> None:
        try:
            with engine.begin() as conn:
                _upsert_state(conn, "siak", updated_at=utc_timestamp())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=second_worker)
    thread.start()
    try:
        # its UPDATE saw no row; its INSERT now waits for the first transaction
        with engine.connect() as observer:
            for _ in range(200):
                waiting = observer.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted "
                    "AND locktype = 'transactionid' AND transactionid::text = %(xid)s",
                    {"xid": xid},
                ).scalar_one()
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting, "the second upsert never waited for the first"
    finally:
        transaction.commit()
        first.close()
        thread.join(timeout=10)
    if errors:
        raise errors[0]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(connector_state)).scalar() == 1
