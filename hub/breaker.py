"""A circuit breaker per connector: a failing national system is left alone for a while
instead of being hammered (invariant 7).

```
closed ──(failure_threshold consecutive failures)──> open
open ──(reset_after seconds passed, allow())──> half_open: one probe may go
half_open ──(probe succeeds)──> closed
half_open ──(probe fails)──> open for another reset_after
```

The breaker counts only what its caller reports. The dispatcher reports retriable transport
failures (connection errors, timeouts, 5xx, 429) with `record_failure()` and answers with
`record_success()`; a refused record (`RejectedRecordError`) means the system works and is
reported as a success or not at all, never as a failure. Fatal errors (authentication,
contract) stop the connector in the dispatcher, not here.

The breaker is meant for one event loop or thread: its methods never wait and are not locked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypedDict

from hub.errors import ConfigError

BreakerState = Literal["closed", "open", "half_open"]


class BreakerSnapshot(TypedDict):
    """What a status display shows about a breaker."""

    state: BreakerState
    failures: int
    failure_threshold: int
    opened_at: float | None  # on the breaker's clock (time.monotonic by default)
    retry_in: float


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after `reset_after` seconds it
    lets one probe through, which closes it on success or opens it again on failure.

    A probe that never reports back (its task was cancelled) does not block the breaker
    forever: after another `reset_after` seconds a new probe may go.

    ```python
    breaker = CircuitBreaker(failure_threshold=5, reset_after=30.0)
    if not breaker.allow():
        return breaker.retry_in()  # seconds to wait
    try:
        response = await send(record)
    except RetriableDeliveryError:
        breaker.record_failure()
        raise
    breaker.record_success()
    ```
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ConfigError(f"failure_threshold must be at least 1, got {failure_threshold!r}")
        if not reset_after > 0:
            raise ConfigError(f"reset_after must be above 0 seconds, got {reset_after!r}")
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The state as last changed; an open breaker turns half_open on the next allow()
        after reset_after."""
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted since the last success."""
        return self._failures

    def allow(self) -> bool:
        """May a request go now? In half_open only one probe at a time gets True."""
        if self._state == "closed":
            return True
        if self.retry_in() > 0:
            return False
        self._state = "half_open"
        self._probe_started_at = self._clock()
        return True

    def retry_in(self) -> float:
        """Seconds until allow() would say yes; 0.0 when it would now."""
        now = self._clock()
        if self._state == "open":
            assert self._opened_at is not None
            return max(0.0, self._opened_at + self.reset_after - now)
        if self._state == "half_open" and self._probe_started_at is not None:
            return max(0.0, self._probe_started_at + self.reset_after - now)
        return 0.0

    def record_success(self) -> None:
        """The remote system answered: close, unless the breaker is open (a late answer to
        a request sent before it opened does not cut the pause short)."""
        if self._state == "open":
            return
        self._state = "closed"
        self._failures = 0
        self._opened_at = None
        self._probe_started_at = None

    def record_failure(self) -> None:
        """A failure the caller counts: open at the threshold; a failed probe re-opens."""
        self._failures += 1
        if self._state == "half_open" or (
            self._state == "closed" and self._failures >= self.failure_threshold
        ):
            self._state = "open"
            self._opened_at = self._clock()
            self._probe_started_at = None

    def snapshot(self) -> BreakerSnapshot:
        """State, failures, when it opened and how long until a probe may go."""
        return BreakerSnapshot(
            state=self._state,
            failures=self._failures,
            failure_threshold=self.failure_threshold,
            opened_at=self._opened_at,
            retry_in=self.retry_in(),
        )
