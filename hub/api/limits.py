"""Per-caller limits of the API: requests per second (with a burst) and a daily quota, per
person (`user:<name>`) or system (`client:<id>`).

`access.require` calls `CallerLimits.check` once the caller is known and allowed; a caller
over a limit gets `429 too_many_requests` with `Retry-After` and `RateLimit-Limit`,
`RateLimit-Remaining`, `RateLimit-Reset` (the window closest to running out: the burst, or
the day). `verdict_headers` gives the same three headers for every other answer to a limited
caller (the API's middleware adds them).

The rate is GCRA, as in `hub.limits` (one theoretical arrival time per caller); the quota
day starts at `reset_time` in `timezone` (midnight WIB by default). With a Redis URL in the
hub's settings both live in Redis, decided by one Lua script on the Redis clock, so every
hub process shares them; without one they live in this process. When Redis cannot be
reached the process falls back to its own counts (logged) rather than refusing everyone.

`check` is synchronous because `require` is: call `require` from a worker thread
(`run_in_threadpool`), as the handlers do for their database work anyway.

```python
limits = CallerLimits(LimitPolicy(rate=20, burst=40, daily=100_000), redis_url=None)
limits.check(request, principal)          # ApiError(429) when over a limit
```
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as time_of_day
from typing import Any, Final, Literal

import redis
from starlette.requests import Request

from hub.api.errors import ApiError
from hub.api.principal import Principal
from hub.errors import ConfigError
from hub.limits import emission_interval, next_reset, quota_day

log = logging.getLogger("hub.api.limits")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_STATE_KEY: Final = "rate_limit"
_MICROS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """How much one caller may ask: `rate` requests per second sustained, `burst` at once,
    `daily` requests per quota day (which starts at `reset_time` in `timezone`)."""

    rate: float = 20.0
    burst: int = 40
    daily: int = 100_000
    reset_time: time_of_day = time_of_day(0)
    timezone: str = "Asia/Jakarta"

    #: GCRA emission interval and burst tolerance in microseconds, worked out once.
    interval_us: int = field(init=False, repr=False, compare=False)
    tolerance_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        interval = emission_interval(self.rate, self.burst)  # ConfigError for a bad rate/burst
        if isinstance(self.daily, bool) or not isinstance(self.daily, int) or self.daily < 1:
            raise ConfigError(f"daily must be a whole number of at least 1, got {self.daily!r}")
        quota_day(datetime.now(UTC), self.reset_time, self.timezone)  # bad zone or time
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "tolerance_us", (self.burst - 1) * interval)


DEFAULT_POLICY: Final = LimitPolicy()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check, with what the RateLimit headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window shown is full again
    retry_after: int = 0  # seconds; 0 when allowed
    exceeded: Literal["rate", "daily"] | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def _verdict(
    policy: LimitPolicy,
    *,
    rate_wait_us: int,
    tat_ahead_us: int,
    daily_used: int,
    day_reset_s: int,
) -> Verdict:
    """The verdict from the GCRA state after the decision (`tat_ahead_us`: TAT minus now)
    and the day's count; `rate_wait_us` > 0 means the rate refused, `daily_used` over the
    limit means the quota did."""
    day_left = max(0, policy.daily - daily_used)
    if rate_wait_us > 0:
        retry = max(1, math.ceil(rate_wait_us / _MICROS))
        reset = max(1, math.ceil(tat_ahead_us / _MICROS))
        return Verdict(False, policy.burst, 0, reset, retry, "rate")
    if daily_used > policy.daily:
        return Verdict(False, policy.daily, 0, day_reset_s, day_reset_s, "daily")
    interval = policy.interval_us
    burst_left = (policy.tolerance_us - tat_ahead_us) // interval + 1
    burst_left = max(0, min(policy.burst, burst_left))
    if burst_left <= day_left:
        reset = math.ceil(max(0, tat_ahead_us) / _MICROS)
        return Verdict(True, policy.burst, burst_left, reset)
    return Verdict(True, policy.daily, day_left, day_reset_s)


class LocalCounts:
    """GCRA and day counts in this process (thread-safe; handlers run in worker threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}
        self._days: dict[str, tuple[str, int]] = {}

    def take(self, subject: str, policy: LimitPolicy, day: str, day_reset_s: int) -> Verdict:
        now = int(self._clock() * _MICROS)
        with self._lock:
            tat = max(self._tat.get(subject, now), now)
            wait = tat - policy.tolerance_us - now
            if wait > 0:
                used = self._days.get(subject, (day, 0))
                used_today = used[1] if used[0] == day else 0
                return _verdict(
                    policy,
                    rate_wait_us=wait,
                    tat_ahead_us=tat - now,
                    daily_used=used_today,
                    day_reset_s=day_reset_s,
                )
            tat += policy.interval_us
            self._tat[subject] = tat
            held_day, used_today = self._days.get(subject, (day, 0))
            if held_day != day:
                used_today = 0
            used_today += 1
            if used_today <= policy.daily:
                self._days[subject] = (day, used_today)
            return _verdict(
                policy,
                rate_wait_us=0,
                tat_ahead_us=tat - now,
                daily_used=used_today,
                day_reset_s=day_reset_s,
            )


# KEYS[1] the caller's TAT, KEYS[2] the caller's count for the day.
# ARGV[1] interval, ARGV[2] tolerance (microseconds), ARGV[3] daily limit, ARGV[4] day TTL (s).
# Returns {wait, TAT - now (microseconds), used today (limit + 1 when refused by the quota)}.
# The quota is only counted for requests the rate let through. TAT is written with
# string.format: Lua would write a 16-digit number as "1.7e+15".
_CHECK_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
    tat = now
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local wait = tat - tolerance - now
if wait > 0 then
    return {wait, tat - now, used}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
if used + 1 > tonumber(ARGV[3]) then
    return {0, tat - now, used + 1}
end
redis.call('SET', KEYS[2], used + 1, 'EX', ARGV[4])
return {0, tat - now, used + 1}
"""


class RedisCounts:
    """GCRA and day counts in Redis, shared by every process with the same `prefix`."""

    def __init__(self, client: redis.Redis, prefix: str = "hub:api:") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_CHECK_SCRIPT)

    def take(self, subject: str, policy: LimitPolicy, day: str, day_reset_s: int) -> Verdict:
        keys = [f"{self.prefix}rate:{subject}", f"{self.prefix}quota:{subject}:{day}"]
        ttl = day_reset_s + 86_400
        args = [policy.interval_us, policy.tolerance_us, policy.daily, ttl]
        wait, ahead, used = (int(value) for value in self._script(keys=keys, args=args))
        return _verdict(
            policy,
            rate_wait_us=wait,
            tat_ahead_us=ahead,
            daily_used=used,
            day_reset_s=day_reset_s,
        )

    def close(self) -> None:
        self.client.close()


@dataclass
class CallerLimits:
    """The limits of every caller of one API: `policy` for all, `overrides` by subject
    (e.g. `{"client:siak-bandung": LimitPolicy(rate=100, burst=200, daily=2_000_000)}`)."""

    policy: LimitPolicy = DEFAULT_POLICY
    overrides: Mapping[str, LimitPolicy] = field(default_factory=dict)
    redis_url: str | None = None
    prefix: str = "hub:api:"
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self.local = LocalCounts(self.clock)
        # Per (reset time, zone): the current quota day and the moment it ends, so that a
        # request works out the calendar only once a day, not every time.
        self._days: dict[tuple[time_of_day, str], tuple[str, datetime, datetime]] = {}
        self.shared: RedisCounts | None = None
        if self.redis_url:
            client = redis.Redis.from_url(
                self.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
            )
            self.shared = RedisCounts(client, self.prefix)
        self._warned = False

    def policy_for(self, subject: str) -> LimitPolicy:
        return self.overrides.get(subject, self.policy)

    def take(self, subject: str) -> Verdict:
        """Count one request of `subject` and say whether it may go."""
        policy = self.policy_for(subject)
        moment = self.now()
        day, resets_at = self._day_of(policy, moment)
        day_reset_s = max(1, math.ceil((resets_at - moment).total_seconds()))
        if self.shared is not None:
            try:
                verdict = self.shared.take(subject, policy, day, day_reset_s)
            except redis.RedisError as exc:
                if not self._warned:
                    log.warning("Redis unreachable for API limits, counting locally: %s", exc)
                    self._warned = True
            else:
                self._warned = False
                return verdict
        return self.local.take(subject, policy, day, day_reset_s)

    def _day_of(self, policy: LimitPolicy, moment: datetime) -> tuple[str, datetime]:
        """The quota day `moment` falls in and when it ends; the calendar is worked out again
        only once that day is over (or the clock went back past when it was worked out)."""
        calendar = (policy.reset_time, policy.timezone)
        known = self._days.get(calendar)
        if known is not None and known[1] <= moment < known[2]:
            return known[0], known[2]
        day = quota_day(moment, policy.reset_time, policy.timezone)
        ends = next_reset(moment, policy.reset_time, policy.timezone)
        self._days[calendar] = (day, moment, ends)
        return day, ends

    def check(self, request: Request, principal: Principal) -> None:
        """Count the request once (a handler may ask `require` twice); 429 when over."""
        state = request.scope.setdefault("state", {})  # `request.state`, without its wrapper
        verdict = state.get(_STATE_KEY)
        if not isinstance(verdict, Verdict):
            verdict = self.take(principal.subject)
            state[_STATE_KEY] = verdict
        if verdict.allowed:
            return
        window = "daily quota" if verdict.exceeded == "daily" else "rate limit"
        raise ApiError(
            429,
            "too_many_requests",
            f"{window} reached; try again in {verdict.retry_after} s",
            {"limit": verdict.exceeded, "retry_after": verdict.retry_after},
            verdict.headers(),
        )

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()


def limit(request: Request, principal: Principal) -> None:
    """Apply the app's caller limits (if any) to an authenticated request that `require`
    does not check: operations open to any valid token."""
    limiter = getattr(request.app.state, "caller_limits", None)
    if limiter is not None:
        limiter.check(request, principal)


def verdict_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The RateLimit headers (lower-case, encoded) of the request's verdict, if it has one:
    the API's middleware adds them to the answer."""
    verdict = scope.get("state", {}).get(_STATE_KEY)
    if not isinstance(verdict, Verdict):
        return []
    headers = [
        (b"ratelimit-limit", b"%d" % verdict.limit),
        (b"ratelimit-remaining", b"%d" % verdict.remaining),
        (b"ratelimit-reset", b"%d" % verdict.reset),
    ]
    if not verdict.allowed:
        headers.append((b"retry-after", b"%d" % verdict.retry_after))
    return headers
