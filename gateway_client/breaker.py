"""A thread-safe circuit breaker guarding calls to the decision service.

States:

- ``CLOSED``: calls go through; ``failure_threshold`` consecutive failures open the breaker.
- ``OPEN``: calls are refused until ``cooldown_s`` has passed since it opened.
- ``HALF_OPEN``: exactly one probe call is let through; its success closes the breaker, its
  failure opens it again for another cooldown. Other calls are refused while the probe runs.

Every call :meth:`CircuitBreaker.allow_request` admits must end in exactly one of
:meth:`~CircuitBreaker.record_success`, :meth:`~CircuitBreaker.record_failure` or
:meth:`~CircuitBreaker.record_ignored` (an outcome that says nothing about the service's health,
such as a rejected request), so a half-open probe never stays outstanding.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed -> open after N consecutive failures -> half-open after a cooldown -> closed."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_s <= 0:
            raise ValueError("cooldown_s must be positive")
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def failure_threshold(self) -> int:
        return self._threshold

    @property
    def cooldown_s(self) -> float:
        return self._cooldown_s

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cooldown has passed reports ``HALF_OPEN``."""
        with self._lock:
            self._advance()
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def allow_request(self) -> bool:
        """Whether a call may go to the service now. In half-open, only the first caller gets
        ``True`` (the probe) until that call's outcome is recorded."""
        with self._lock:
            self._advance()
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        """A call reached a healthy service: reset the failure count; a probe closes the breaker."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._state = BreakerState.CLOSED
                self._probe_in_flight = False
            if self._state is BreakerState.CLOSED:
                self._failures = 0

    def record_failure(self) -> None:
        """A call failed because of the service (timeout, unavailable, overloaded, ...)."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._open()
            elif self._state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self._threshold:
                    self._open()
            # OPEN: a late failure of a call admitted before the breaker opened changes nothing.

    def record_ignored(self) -> None:
        """A call ended in a way that says nothing about the service's health: it neither
        counts as a failure nor closes the breaker, but frees the half-open probe slot."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._probe_in_flight = False

    def reset(self) -> None:
        """Force the breaker closed with no failures counted."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probe_in_flight = False

    # -- internals (called with the lock held) ----------------------------------------------

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._probe_in_flight = False

    def _advance(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._cooldown_s:
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
