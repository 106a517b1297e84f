"""Rate limits and daily quotas for the national systems (invariant 7: never exceeded).

A rate limiter spaces requests with GCRA, the generic cell rate algorithm: it keeps one
timestamp, the theoretical arrival time (TAT) of the next request, and grants a request at
time t when `TAT - t <= tolerance`, then moves TAT to `max(TAT, t) + interval`.
`LocalRateLimiter` keeps TAT in the process, `RedisRateLimiter` keeps it in Redis, where one
Lua script reads the Redis clock and updates TAT atomically, so every hub process shares one
limit and one clock.

The window argument. With emission interval T and tolerance `(burst - 1) * T`, any n
consecutive grants at t_1 <= ... <= t_n satisfy `t_n - t_1 >= (n - burst) * T`. A closed
window of W seconds holding n grants therefore has `(n - burst) * T <= W`. The interval
is chosen one microsecond longer than `1 / rate`, so `T > 1 / rate` and `n - burst < rate * W`:

    grants in any closed window of W seconds <= ceil(rate * W) + burst - 1

For a whole-number rate and W = 1 s that is at most `rate + burst - 1`, and with `burst=1`
at most `rate`, even at the window edge where plain `T = 1 / rate` would fit `rate + 1`
grants into `[t, t + 1]` (at t, t + T, ..., t + 1). The bound holds for the times the
limiter grants, and a granted request goes at once: a late wake-up delays a grant, it never
crowds two. A remote system counts arrivals, which reach it with network jitter; to keep the
promise for jitter up to J seconds, give `headroom=h` with `h >= J / (1 + J)`: the limiter
then spaces requests for `rate * (1 - h)` per second (h=0.05 covers J = 52 ms).

A daily quota counts calls per quota day, which begins at `reset_time` local time in the
remote system's time zone (WIB for Dukcapil). The remote system's own count wins when it is
smaller (`set_remaining`), and a "quota used up" answer empties it until the reset
(`exhaust`).

```python
limiter = build_rate_limiter("dukcapil", rate=50, burst=1, redis=client)
quota = build_daily_quota("dukcapil", 10_000, time(0), "Asia/Jakarta", redis=client)
if await quota.take():
    await limiter.acquire()
    ...  # send
```
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis.asyncio import Redis

from hub.errors import ConfigError

Sleep = Callable[[float], Awaitable[None]]

_MICROSECOND = 1e-6
_DAY = timedelta(days=1)


class RateLimiter(Protocol):
    """Spaces requests to one remote system."""

    async def acquire(self) -> None:
        """Wait until one request may go, and take it."""
        ...

    async def try_acquire(self) -> float:
        """Take one request if it may go now and return 0.0; otherwise take nothing and
        return the seconds to wait before it may."""
        ...


class DailyQuota(Protocol):
    """The calls left today on one remote system."""

    async def take(self, n: int = 1) -> bool:
        """Take n calls from today's quota; False, and nothing taken, when fewer are left."""
        ...

    async def remaining(self) -> int:
        """Calls left today."""
        ...

    async def set_remaining(self, n: int) -> None:
        """The remote system says it has n calls left today: keep the smaller count."""
        ...

    async def exhaust(self) -> None:
        """The remote system says the quota is used up: nothing is left until the reset."""
        ...

    def resets_at(self) -> datetime:
        """The next reset, an aware datetime in the quota's time zone."""
        ...


def emission_interval(rate: float, burst: int, headroom: float = 0.0) -> int:
    """The GCRA interval in whole microseconds, strictly longer than `1 / rate` (see the
    module docstring); raises ConfigError for a bad rate, burst or headroom."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise ConfigError(f"rate must be a finite number of requests per second, got {rate!r}")
    if rate <= 0:
        raise ConfigError(f"rate must be above 0 requests per second, got {rate!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ConfigError(f"burst must be a whole number of at least 1, got {burst!r}")
    if not 0.0 <= headroom < 1.0:
        raise ConfigError(f"headroom must be at least 0 and below 1, got {headroom!r}")
    return math.floor(1_000_000 / (rate * (1.0 - headroom))) + 1


#: The most a late grant may take back from the schedule (microseconds), see `catch_up`.
CATCH_UP_CAP: Final = 8_000


def catch_up(rate: float, interval_us: int) -> int:
    """How far behind "now" the schedule may be and still be kept, in microseconds, so that
    a grant that woke up late (timer resolution, a Redis round trip) does not push every
    later slot back. A schedule further behind means the limiter was idle: it starts afresh.

    Grants i < j then satisfy g_j - g_i >= (j - i) * T - tolerance - c, so a closed
    one-second window holds at most burst + floor((1 s + c) / T) grants. `c` is the largest
    value (capped at `CATCH_UP_CAP`) that keeps this within ceil(rate) + burst - 1, the bound
    without catching up. With no headroom (T a hair over 1 / rate) that leaves almost
    nothing; with the dispatcher's 4 % headroom at 50/s it is the full 8 ms.
    """
    return max(0, min(CATCH_UP_CAP, math.ceil(rate) * interval_us - 1_000_000 - 1))


class LocalRateLimiter:
    """GCRA in this process: `rate` requests per second sustained, `burst` at once.

    Spacing is exact: grants follow each other `1 / rate` seconds (plus one microsecond)
    apart once the burst is spent. Tasks waiting in acquire() queue on an asyncio.Lock,
    which serves them first come, first served, so no task starves; only the task at the
    head of the queue sleeps, and it is granted on its clock reading after the sleep. The
    clock and sleep are injectable for tests.

    ```python
    limiter = LocalRateLimiter(rate=10, burst=2)
    await limiter.acquire()
    ```
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        headroom: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        interval_us = emission_interval(rate, burst, headroom)
        self.interval = interval_us * _MICROSECOND
        self.tolerance = (burst - 1) * self.interval
        self.catch_up = catch_up(rate, interval_us) * _MICROSECOND
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._tat = -math.inf

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := await self.try_acquire()) > 0:
                await self._sleep(wait)

    async def try_acquire(self) -> float:
        """Not queued: a request that may go now is granted even while others wait."""
        now = self._clock()
        # Idle (the schedule is more than `catch_up` behind): start afresh at now. A little
        # behind (a late wake-up): keep the schedule, so the lateness is not lost.
        tat = self._tat if self._tat >= now - self.catch_up else now
        wait = tat - self.tolerance - now
        if wait > 0:
            return wait
        self._tat = tat + self.interval
        return 0.0


# KEYS[1] the limiter's key; ARGV[1] interval, ARGV[2] tolerance, ARGV[3] catch-up, in
# microseconds.
# Returns {granted 0/1, wait in microseconds, Redis TIME seconds, Redis TIME microseconds}.
# TAT is stored with string.format: Lua would write a 16-digit number as "1.7e+15".
_GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local catch_up = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now - catch_up then
    tat = now
end
local wait = tat - tolerance - now
if wait > 0 then
    return {0, wait, t[1], t[2]}
end
local new_tat = tat + interval
-- kept until the schedule could no longer be caught up with: then it means "idle"
local ttl_ms = math.ceil((new_tat + catch_up - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, 0, t[1], t[2]}
"""


class RedisRateLimiter:
    """GCRA in Redis, shared by every hub process that uses the same key.

    The decision is one Lua script that reads Redis `TIME`, so all processes share one
    clock; the key expires once it no longer holds anything (the limiter is idle).

    A request is granted only at the moment Redis sees it due, and goes right after: a slow
    wake-up makes the hub late, never early, so the window bound holds for the times the
    requests actually leave, give or take one Redis round trip. (Reserving a future slot
    and sleeping until it would instead let a late sleeper crowd the next slot.) Within a
    process, one task at a time asks Redis, in arrival order (asyncio.Lock); across
    processes, whoever asks first once a slot is due gets it.

    ```python
    limiter = RedisRateLimiter(client, "hub:rate:dukcapil", rate=50)
    await limiter.acquire()
    ```
    """

    def __init__(
        self,
        client: Redis,
        key: str,
        rate: float,
        burst: int = 1,
        *,
        headroom: float = 0.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.key = key
        self.rate = rate
        self.burst = burst
        self._interval_us = emission_interval(rate, burst, headroom)
        self._tolerance_us = (burst - 1) * self._interval_us
        self._catch_up_us = catch_up(rate, self._interval_us)
        self._script = client.register_script(_GCRA_SCRIPT)
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def _attempt(self) -> tuple[float, float]:
        """One try: (seconds to wait, 0.0 when granted; Redis time of the decision)."""
        granted, wait_us, seconds, micros = await self._script(
            keys=[self.key], args=[self._interval_us, self._tolerance_us, self._catch_up_us]
        )
        at = int(seconds) + int(micros) * _MICROSECOND
        return (0.0 if granted else int(wait_us) * _MICROSECOND), at

    async def acquire(self) -> None:
        await self.acquire_at()

    async def acquire_at(self) -> float:
        """Like acquire(), and return the grant's time on the Redis clock (Unix seconds)."""
        async with self._lock:
            while True:
                wait, at = await self._attempt()
                if wait == 0:
                    return at
                await self._sleep(wait)

    async def try_acquire(self) -> float:
        """Not queued: a request that may go now is granted even while others wait."""
        wait, _ = await self._attempt()
        return wait


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (expected e.g. 'Asia/Jakarta')") from exc


def _check_reset_time(reset_time: time_of_day) -> None:
    if reset_time.tzinfo is not None:
        raise ConfigError("reset_time must be a local time without tzinfo; give the zone apart")


def _local_day(now: datetime, reset_time: time_of_day, tz: str) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    _check_reset_time(reset_time)
    local = now.astimezone(_zone(tz))
    if local.time().replace(tzinfo=None) < reset_time:
        return local.date() - _DAY
    return local.date()


def quota_day(now: datetime, reset_time: time_of_day, tz: str) -> str:
    """The quota day `now` falls in, as "YYYY-MM-DD": the local date of its last reset."""
    return _local_day(now, reset_time, tz).isoformat()


def next_reset(now: datetime, reset_time: time_of_day, tz: str) -> datetime:
    """The first reset after `now`, an aware datetime in `tz`."""
    day = _local_day(now, reset_time, tz) + _DAY
    return datetime.combine(day, reset_time, tzinfo=_zone(tz))


class _QuotaDay:
    """The quota day settings shared by both quotas, checked once."""

    def __init__(
        self,
        limit: int,
        reset_time: time_of_day,
        timezone: str,
        now: Callable[[], datetime],
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigError(f"daily quota limit must be a whole number >= 0, got {limit!r}")
        _check_reset_time(reset_time)
        _zone(timezone)
        self.limit = limit
        self.reset_time = reset_time
        self.timezone = timezone
        self._now = now

    def day(self) -> str:
        return quota_day(self._now(), self.reset_time, self.timezone)

    def resets_at(self) -> datetime:
        return next_reset(self._now(), self.reset_time, self.timezone)


def _check_take(n: int) -> None:
    if n < 1:
        raise ValueError(f"take at least 1 call, got {n}")


def _check_remaining(n: int) -> None:
    if n < 0:
        raise ValueError(f"remaining calls cannot be negative, got {n}")


class LocalDailyQuota(_QuotaDay):
    """A daily quota counted in this process.

    ```python
    quota = LocalDailyQuota(10_000, reset_time=time(0), timezone="Asia/Jakarta")
    if not await quota.take():
        ...  # pause until quota.resets_at()
    ```
    """

    def __init__(
        self,
        limit: int,
        reset_time: time_of_day = time_of_day(0),
        timezone: str = "Asia/Jakarta",
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__(limit, reset_time, timezone, now)
        self._day = ""
        self._used = 0

    def _roll(self) -> None:
        day = self.day()
        if day != self._day:
            self._day, self._used = day, 0

    async def take(self, n: int = 1) -> bool:
        _check_take(n)
        self._roll()
        if self._used + n > self.limit:
            return False
        self._used += n
        return True

    async def remaining(self) -> int:
        self._roll()
        return max(0, self.limit - self._used)

    async def set_remaining(self, n: int) -> None:
        _check_remaining(n)
        self._roll()
        self._used = max(self._used, self.limit - n)

    async def exhaust(self) -> None:
        await self.set_remaining(0)


# KEYS[1] the day's counter; ARGV[1] n, ARGV[2] limit, ARGV[3] TTL in seconds.
_TAKE_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if used + n > tonumber(ARGV[2]) then
    return 0
end
redis.call('SET', KEYS[1], used + n, 'EX', ARGV[3])
return 1
"""

# KEYS[1] the day's counter; ARGV[1] remote's remaining, ARGV[2] limit, ARGV[3] TTL.
_SET_REMAINING_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[2]) - tonumber(ARGV[1])
if floor > used then
    redis.call('SET', KEYS[1], floor, 'EX', ARGV[3])
end
return 0
"""


class RedisDailyQuota(_QuotaDay):
    """A daily quota counted in Redis, shared by every process using the same prefix.

    The day's count lives at `{key_prefix}{day}` (e.g. "hub:quota:dukcapil:2026-11-30") and
    expires a day after the reset that ends that day. The day comes from `now`, so processes
    agree as long as their clocks do.
    """

    def __init__(
        self,
        client: Redis,
        key_prefix: str,
        limit: int,
        reset_time: time_of_day = time_of_day(0),
        timezone: str = "Asia/Jakarta",
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__(limit, reset_time, timezone, now)
        self.key_prefix = key_prefix
        self._client = client
        self._take = client.register_script(_TAKE_SCRIPT)
        self._set_remaining = client.register_script(_SET_REMAINING_SCRIPT)

    def _key_and_ttl(self) -> tuple[str, int]:
        now = self._now()
        day = quota_day(now, self.reset_time, self.timezone)
        until = next_reset(now, self.reset_time, self.timezone) + _DAY
        return f"{self.key_prefix}{day}", math.ceil((until - now).total_seconds())

    async def take(self, n: int = 1) -> bool:
        _check_take(n)
        key, ttl = self._key_and_ttl()
        return bool(await self._take(keys=[key], args=[n, self.limit, ttl]))

    async def remaining(self) -> int:
        key, _ = self._key_and_ttl()
        used = await self._client.get(key)
        return max(0, self.limit - int(used or 0))

    async def set_remaining(self, n: int) -> None:
        _check_remaining(n)
        key, ttl = self._key_and_ttl()
        await self._set_remaining(keys=[key], args=[n, self.limit, ttl])

    async def exhaust(self) -> None:
        await self.set_remaining(0)


def build_rate_limiter(
    name: str,
    rate: float,
    burst: int,
    redis: Redis | None,
    prefix: str = "hub:",
    *,
    headroom: float = 0.0,
) -> RateLimiter:
    """The limiter for connector `name`: shared through Redis at `{prefix}rate:{name}` when a
    client is given, in this process otherwise."""
    if redis is None:
        return LocalRateLimiter(rate, burst, headroom=headroom)
    return RedisRateLimiter(redis, f"{prefix}rate:{name}", rate, burst, headroom=headroom)


def build_daily_quota(
    name: str,
    limit: int,
    reset_time: time_of_day,
    timezone: str,
    redis: Redis | None,
    prefix: str = "hub:",
    *,
    now: Callable[[], datetime] = _utc_now,
) -> DailyQuota:
    """The daily quota of connector `name`: shared through Redis under
    `{prefix}quota:{name}:` when a client is given, in this process otherwise."""
    if redis is None:
        return LocalDailyQuota(limit, reset_time, timezone, now=now)
    return RedisDailyQuota(redis, f"{prefix}quota:{name}:", limit, reset_time, timezone, now=now)
