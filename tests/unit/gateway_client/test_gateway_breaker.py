"""CircuitBreaker transitions, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from gateway_client.breaker import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        assert breaker.allow_request()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_starts_closed_and_allows(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10.0, clock=clock)
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow_request() for _ in range(10))


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 2
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow_request()


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    assert breaker.consecutive_failures == 0
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_ignored_outcomes_do_not_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(2, 10.0, clock=clock)
    breaker.record_failure()
    for _ in range(5):
        breaker.record_ignored()
    assert breaker.consecutive_failures == 1
    assert breaker.state is BreakerState.CLOSED


def test_stays_open_until_the_cooldown_passes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    _open(breaker)
    clock.advance(9.999)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow_request()
    clock.advance(0.001)
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    _open(breaker)
    clock.advance(10.0)
    assert breaker.allow_request()
    assert not breaker.allow_request()
    assert not breaker.allow_request()
    assert breaker.state is BreakerState.HALF_OPEN


def test_probe_success_closes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(2, 10.0, clock=clock)
    _open(breaker)
    clock.advance(10.0)
    assert breaker.allow_request()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.allow_request() and breaker.allow_request()


def test_probe_failure_reopens_for_a_fresh_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker(2, 10.0, clock=clock)
    _open(breaker)
    clock.advance(10.0)
    assert breaker.allow_request()
    clock.advance(3.0)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(9.0)
    assert not breaker.allow_request()
    clock.advance(1.0)
    assert breaker.allow_request()  # the next probe


def test_ignored_probe_frees_the_slot_without_closing(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    _open(breaker)
    clock.advance(10.0)
    assert breaker.allow_request()
    breaker.record_ignored()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow_request()
    assert not breaker.allow_request()


def test_late_outcomes_while_open_change_nothing(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    _open(breaker)
    clock.advance(5.0)
    breaker.record_failure()  # must not restart the cooldown
    breaker.record_success()  # must not close without a probe
    assert breaker.state is BreakerState.OPEN
    clock.advance(5.0)
    assert breaker.state is BreakerState.HALF_OPEN


def test_reset_closes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    _open(breaker)
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow_request()


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_rejects_bad_configuration(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, cooldown)


def test_only_one_thread_gets_the_probe(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    _open(breaker)
    clock.advance(10.0)
    start = threading.Barrier(16)
    granted: list[bool] = []
    lock = threading.Lock()

    def contend() -> None:
        start.wait()
        allowed = breaker.allow_request()
        with lock:
            granted.append(allowed)

    threads = [threading.Thread(target=contend) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 1


def test_concurrent_failures_open_exactly_at_the_threshold(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1000, 10.0, clock=clock)

    def fail() -> None:
        for _ in range(100):
            breaker.record_failure()

    threads = [threading.Thread(target=fail) for _ in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.consecutive_failures == 900
    assert breaker.state is BreakerState.CLOSED
    for _ in range(100):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
