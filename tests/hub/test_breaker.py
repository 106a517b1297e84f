"""The circuit breaker on a fake clock: closed -> open -> half_open -> closed or open."""

from __future__ import annotations

import pytest

from hub.breaker import CircuitBreaker
from hub.errors import ConfigError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_after=30.0, clock=clock)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()


def test_closed_allows_and_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.record_success()
    assert breaker.failures == 0
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.retry_in() == 0.0


def test_consecutive_failures_open_it(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.now += 10
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(20.0)


def test_after_reset_after_exactly_one_probe_goes(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    trip(breaker)
    clock.now += 30
    assert breaker.retry_in() == 0.0
    assert breaker.allow()
    assert breaker.state == "half_open"
    assert not breaker.allow()
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(30.0)


def test_a_successful_probe_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.failures == 0
    assert all(breaker.allow() for _ in range(5))


def test_a_failed_probe_reopens_for_another_period(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    trip(breaker)
    clock.now += 31
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(30.0)
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_a_lost_probe_does_not_block_forever(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.now += 30
    assert breaker.allow()  # this probe never reports back
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    assert not breaker.allow()


def test_a_late_success_does_not_cut_the_pause_short(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    trip(breaker)
    breaker.record_success()  # a request sent before the breaker opened
    assert breaker.state == "open"
    assert not breaker.allow()


def test_snapshot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    assert breaker.snapshot() == {
        "state": "closed",
        "failures": 0,
        "failure_threshold": 3,
        "opened_at": None,
        "retry_in": 0.0,
    }
    trip(breaker)
    clock.now += 5
    assert breaker.snapshot() == {
        "state": "open",
        "failures": 3,
        "failure_threshold": 3,
        "opened_at": 1000.0,
        "retry_in": 25.0,
    }


@pytest.mark.parametrize(
    ("threshold", "reset_after", "message"),
    [(0, 30.0, "failure_threshold"), (3, 0.0, "reset_after"), (3, -1.0, "reset_after")],
)
def test_bad_parameters(threshold: int, reset_after: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CircuitBreaker(threshold, reset_after)
