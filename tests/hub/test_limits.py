"""Rate limiters and daily quotas: in process on a fake clock, shared through a real Redis.

The window claim of hub.limits is checked on measured grant times: no closed one-second
window holds more than `rate + burst - 1` grants, also with three OS processes sharing one
Redis limiter.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path

import pytest
from redis.asyncio import Redis

from hub.errors import ConfigError
from hub.limits import (
    DailyQuota,
    LocalDailyQuota,
    LocalRateLimiter,
    RedisDailyQuota,
    RedisRateLimiter,
    build_daily_quota,
    build_rate_limiter,
    emission_interval,
    next_reset,
    quota_day,
)
from tests.conftest import MANY_PROCESSES

REPO = Path(__file__).resolve().parents[2]
WIB = "Asia/Jakarta"


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most grants in any closed window [t, t + window]."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_right(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


class FakeClock:
    """time.monotonic and asyncio.sleep in one: sleeping moves the clock, never waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@asynccontextmanager
async def redis_client(url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


# --- the in-process limiter ---------------------------------------------------------------


def test_interval_is_just_longer_than_one_over_rate() -> None:
    assert emission_interval(50, 1) == 20_001
    assert emission_interval(3, 1) == 333_334
    assert emission_interval(10, 1, headroom=0.1) == 111_112
    assert emission_interval(0.5, 4) == 2_000_001


def test_burst_then_even_spacing() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(4, burst=3, clock=clock, sleep=clock.sleep)

    async def run() -> list[float]:
        grants = []
        for _ in range(11):
            await limiter.acquire()
            grants.append(clock())
        return grants

    grants = asyncio.run(run())
    assert grants[:3] == [0.0, 0.0, 0.0]
    gaps = [b - a for a, b in zip(grants[2:], grants[3:], strict=False)]
    assert gaps == pytest.approx([0.250001] * 8)
    assert max_in_window(grants) <= 4 + 3 - 1


def test_window_edge_holds_rate_not_rate_plus_one() -> None:
    # With an interval of exactly 1/4 s, grants at 0, 0.25, 0.5, 0.75 and 1.0 put five
    # into [0, 1]; the extra microsecond keeps it at four.
    clock = FakeClock()
    limiter = LocalRateLimiter(4, clock=clock, sleep=clock.sleep)

    async def run() -> list[float]:
        grants = []
        for _ in range(40):
            await limiter.acquire()
            grants.append(clock())
        return grants

    grants = asyncio.run(run())
    assert max_in_window(grants) == 4
    assert grants[-1] == pytest.approx(39 * 0.250001)


def test_try_acquire_takes_nothing_when_refused() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(2, clock=clock, sleep=clock.sleep)

    async def run() -> None:
        assert await limiter.try_acquire() == 0.0
        assert await limiter.try_acquire() == pytest.approx(0.500001)
        clock.now += 0.3
        assert await limiter.try_acquire() == pytest.approx(0.200001)
        clock.now += 0.200001
        assert await limiter.try_acquire() == 0.0
        assert await limiter.try_acquire() == pytest.approx(0.500001)

    asyncio.run(run())


def test_concurrent_tasks_are_served_in_order_at_the_rate() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(10, burst=2, clock=clock, sleep=clock.sleep)
    granted: list[tuple[int, float]] = []

    async def task(i: int) -> None:
        await limiter.acquire()
        granted.append((i, clock()))

    async def run() -> None:
        await asyncio.gather(*(task(i) for i in range(50)))

    asyncio.run(run())
    assert [i for i, _ in granted] == list(range(50))  # first come, first served
    times = [t for _, t in granted]
    assert max_in_window(times) <= 10 + 2 - 1
    assert times[-1] == pytest.approx(48 * 0.100001)


def test_headroom_spaces_for_a_lower_rate() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(10, headroom=0.1, clock=clock, sleep=clock.sleep)

    async def run() -> None:
        for _ in range(10):
            await limiter.acquire()

    asyncio.run(run())
    assert clock.now == pytest.approx(9 * 0.111112)


@pytest.mark.parametrize(
    ("rate", "burst", "message"),
    [
        (0, 1, "rate must be above 0"),
        (-5, 1, "rate must be above 0"),
        (math.nan, 1, "finite"),
        (math.inf, 1, "finite"),
        ("50", 1, "finite"),
        (10, 0, "burst must be"),
        (10, 1.5, "burst must be"),
    ],
)
def test_bad_rate_parameters(rate: float, burst: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalRateLimiter(rate, burst)
    with pytest.raises(ConfigError, match=message):
        build_rate_limiter("dukcapil", rate, burst, None)


def test_bad_headroom() -> None:
    with pytest.raises(ConfigError, match="headroom"):
        LocalRateLimiter(10, headroom=1.0)


def test_build_without_redis_is_local() -> None:
    assert isinstance(build_rate_limiter("dukcapil", 50, 1, None), LocalRateLimiter)
    quota = build_daily_quota("dukcapil", 100, time_of_day(0), WIB, None)
    assert isinstance(quota, LocalDailyQuota)


# --- the Redis limiter --------------------------------------------------------------------


@pytest.mark.service
def test_redis_limiter_spacing(redis_url: str, redis_prefix: str) -> None:
    async def run() -> tuple[float, list[float]]:
        async with redis_client(redis_url) as client:
            limiter = build_rate_limiter("spacing", 100, 1, client, prefix=redis_prefix)
            assert isinstance(limiter, RedisRateLimiter)
            assert limiter.key == f"{redis_prefix}rate:spacing"
            started = time.perf_counter()
            grants = [await limiter.acquire_at() for _ in range(30)]
            return time.perf_counter() - started, grants

    elapsed, grants = asyncio.run(run())
    assert elapsed >= 0.28
    assert min(b - a for a, b in zip(grants, grants[1:], strict=False)) >= 0.010001 - 1e-6
    assert max_in_window(grants) <= 100


@pytest.mark.service
def test_redis_try_acquire_and_idle_expiry(redis_url: str, redis_prefix: str) -> None:
    key = f"{redis_prefix}rate:idle"

    async def run() -> None:
        async with redis_client(redis_url) as client:
            limiter = RedisRateLimiter(client, key, rate=10)
            assert await limiter.try_acquire() == 0.0
            wait = await limiter.try_acquire()
            assert 0.05 < wait <= 0.100001
            assert 0 < await client.pttl(key) <= 102
            again = await limiter.try_acquire()  # nothing was taken: the wait only shrinks
            assert again <= wait
            await asyncio.sleep(0.15)
            assert await client.exists(key) == 0  # idle: the key is gone
            assert await limiter.try_acquire() == 0.0

    asyncio.run(run())


@pytest.mark.service
def test_redis_burst(redis_url: str, redis_prefix: str) -> None:
    async def run() -> None:
        async with redis_client(redis_url) as client:
            limiter = RedisRateLimiter(client, f"{redis_prefix}rate:burst", rate=1, burst=3)
            assert [await limiter.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
            assert await limiter.try_acquire() > 0.9

    asyncio.run(run())


CHILD = """
import asyncio, json, sys, time
from redis.asyncio import Redis
from hub.limits import RedisRateLimiter

async def main(url, key, rate):
    client = Redis.from_url(url)
    try:
        limiter = RedisRateLimiter(client, key, rate)
        await client.ping()
        print("ready", flush=True)
        end_at = float(sys.stdin.readline())
        grants, seen = [], []
        while time.time() < end_at:
            grants.append(await limiter.acquire_at())
            seen.append(time.time())
        print(json.dumps({"grants": grants, "seen": seen}), flush=True)
    finally:
        await client.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


@dataclass
class Shared:
    """What each process saw: grant times on the Redis clock, and on its own clock after."""

    grants: list[list[float]]
    seen: list[list[float]]


def run_processes(url: str, key: str, rate: float, seconds: float, processes: int = 3) -> Shared:
    """Start the processes, let them all get ready, then acquire in a loop for `seconds`."""
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", CHILD, url, key, str(rate)],
                    cwd=REPO,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(processes)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
            end_at = time.time() + seconds
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(f"{end_at}\n")
                proc.stdin.flush()
            outputs = [proc.communicate(timeout=seconds + 10)[0] for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
    assert all(proc.returncode == 0 for proc in procs)
    results = [json.loads(out) for out in outputs]
    return Shared([r["grants"] for r in results], [r["seen"] for r in results])


@MANY_PROCESSES  # a throughput floor: not beside other tests that start many processes
@pytest.mark.service
def test_three_processes_share_one_limit(redis_url: str, redis_prefix: str) -> None:
    rate, seconds = 50, 2.5
    shared = run_processes(redis_url, f"{redis_prefix}rate:shared", rate, seconds)
    grants = [t for per_process in shared.grants for t in per_process]
    assert max_in_window(grants) <= rate
    assert len(grants) >= 0.9 * rate * seconds
    assert all(len(g) >= 0.05 * len(grants) for g in shared.grants)  # none starves


# --- daily quotas -------------------------------------------------------------------------


class Now:
    """An injectable now() that a test moves."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Backend:
    kind: str
    url: str = ""
    prefix: str = ""


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.service)])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "local":
        return Backend("local")
    return Backend(
        "redis", request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    )


@asynccontextmanager
async def open_quota(
    backend: Backend,
    limit: int,
    now: Callable[[], datetime],
    reset_time: time_of_day = time_of_day(0),
) -> AsyncIterator[DailyQuota]:
    if backend.kind == "local":
        yield LocalDailyQuota(limit, reset_time, WIB, now=now)
        return
    async with redis_client(backend.url) as client:
        yield RedisDailyQuota(client, f"{backend.prefix}quota:", limit, reset_time, WIB, now=now)


# 2026-11-30 10:00 UTC is 17:00 WIB; the WIB day ends at 17:00 UTC.
MORNING = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_quota_day_and_next_reset() -> None:
    midnight = time_of_day(0)
    assert quota_day(MORNING, midnight, WIB) == "2026-11-30"
    assert quota_day(datetime(2026, 11, 30, 16, 59, 59, tzinfo=UTC), midnight, WIB) == "2026-11-30"
    assert quota_day(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), midnight, WIB) == "2026-12-01"
    reset = next_reset(MORNING, midnight, WIB)
    assert reset.isoformat() == "2026-12-01T00:00:00+07:00"
    assert reset == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    six = time_of_day(6)
    # 22:00 UTC is 05:00 WIB on 1 December: still the quota day that began at 06:00 on 30th.
    late = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    assert quota_day(late, six, WIB) == "2026-11-30"
    assert next_reset(late, six, WIB).isoformat() == "2026-12-01T06:00:00+07:00"
    assert quota_day(datetime(2026, 11, 30, 23, 0, tzinfo=UTC), six, WIB) == "2026-12-01"
    with pytest.raises(ValueError, match="aware"):
        quota_day(datetime(2026, 11, 30, 10, 0), midnight, WIB)  # noqa: DTZ001


def test_quota_take_and_remaining(backend: Backend) -> None:
    async def run() -> None:
        async with open_quota(backend, 10, Now(MORNING)) as quota:
            assert await quota.remaining() == 10
            assert await quota.take()
            assert await quota.take(6)
            assert await quota.remaining() == 3
            assert not await quota.take(4)  # not enough: nothing taken
            assert await quota.remaining() == 3
            assert await quota.take(3)
            assert not await quota.take()
            assert await quota.remaining() == 0
            with pytest.raises(ValueError, match="at least 1"):
                await quota.take(0)

    asyncio.run(run())


def test_quota_trusts_the_smaller_remaining(backend: Backend) -> None:
    async def run() -> None:
        async with open_quota(backend, 100, Now(MORNING)) as quota:
            assert await quota.take(10)
            await quota.set_remaining(500)  # theirs is larger: ours stands
            assert await quota.remaining() == 90
            await quota.set_remaining(5)
            assert await quota.remaining() == 5
            assert not await quota.take(6)
            assert await quota.take(5)
            await quota.set_remaining(50)  # never gives back what was used
            assert await quota.remaining() == 0

    asyncio.run(run())


def test_quota_exhaust_until_the_reset(backend: Backend) -> None:
    now = Now(MORNING)

    async def run() -> None:
        async with open_quota(backend, 100, now) as quota:
            await quota.exhaust()
            assert await quota.remaining() == 0
            assert not await quota.take()
            assert quota.resets_at().isoformat() == "2026-12-01T00:00:00+07:00"
            now.at = datetime(2026, 11, 30, 16, 59, 59, tzinfo=UTC)
            assert not await quota.take()
            now.at = quota.resets_at()
            assert await quota.remaining() == 100
            assert await quota.take()
            assert await quota.remaining() == 99
            assert quota.resets_at().isoformat() == "2026-12-02T00:00:00+07:00"

    asyncio.run(run())


def test_quota_zero_limit(backend: Backend) -> None:
    async def run() -> None:
        async with open_quota(backend, 0, Now(MORNING)) as quota:
            assert not await quota.take()
            assert await quota.remaining() == 0

    asyncio.run(run())


@pytest.mark.service
def test_redis_quota_shared_by_two_clients(redis_url: str, redis_prefix: str) -> None:
    async def run() -> list[bool]:
        async with redis_client(redis_url) as first, redis_client(redis_url) as second:
            quotas = [
                build_daily_quota("dukcapil", 100, time_of_day(0), WIB, client, redis_prefix)
                for client in (first, second)
            ]
            results = await asyncio.gather(*(quotas[i % 2].take() for i in range(150)))
            assert await quotas[0].remaining() == 0
            assert await quotas[1].remaining() == 0
            return list(results)

    results = asyncio.run(run())
    assert results.count(True) == 100


@pytest.mark.service
def test_redis_quota_day_key_and_expiry(redis_url: str, redis_prefix: str) -> None:
    now = Now(MORNING)

    async def run() -> None:
        async with redis_client(redis_url) as client:
            quota = RedisDailyQuota(client, f"{redis_prefix}q:", 10, time_of_day(0), WIB, now=now)
            assert await quota.take(2)
            key = f"{redis_prefix}q:2026-11-30"
            assert await client.get(key) == b"2"
            # 7 h until the reset at 17:00 UTC, then a day more.
            expected = int(timedelta(hours=7 + 24).total_seconds())
            assert expected - 5 <= await client.ttl(key) <= expected
            now.at = MORNING + timedelta(hours=8)
            assert await quota.take(3)
            assert await client.get(f"{redis_prefix}q:2026-12-01") == b"3"
            assert await client.get(key) == b"2"

    asyncio.run(run())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"timezone": "Asia/Atlantis"}, "unknown time zone"),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
        ({"reset_time": time_of_day(0, tzinfo=UTC)}, "reset_time"),
    ],
)
def test_bad_quota_parameters(kwargs: dict[str, object], message: str) -> None:
    params: dict[str, object] = {
        "limit": 10,
        "reset_time": time_of_day(0),
        "timezone": WIB,
        **kwargs,
    }
    with pytest.raises(ConfigError, match=message):
        LocalDailyQuota(**params)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        build_daily_quota("dukcapil", redis=None, **params)  # type: ignore[arg-type]
