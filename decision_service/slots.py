"""Decide slots: at most ``size`` decisions run the encoder at once, the rest wait in order.

``threading.Semaphore`` would bound them too, but wakes an arbitrary waiter: under load a
call can be passed over again and again, which is what a p99 measures. Here each waiter
parks on a lock of its own in a queue and ``release`` hands the slot to the oldest one, so
calls are served in arrival order. ``limit`` bounds holders plus waiters: past it ``enter``
refuses at once, so an overload is answered instead of queued.
"""

from __future__ import annotations

import threading
from collections import deque
from threading import TIMEOUT_MAX


class SlotsFull(Exception):
    """``limit`` calls already hold or wait for a slot."""


class DecideSlots:
    def __init__(self, size: int, limit: int) -> None:
        if size < 1 or limit < 1:
            raise ValueError("size and limit must be >= 1")
        self.size = size
        self.limit = limit
        self._free = size
        self._waiters: deque[threading.Lock] = deque()
        self._lock = threading.Lock()
        self.admitted = 0  # calls holding or waiting for a slot
        self.admitted_total = 0  # calls ever admitted

    def enter(self, timeout_s: float | None = None) -> bool:
        """Take a slot, waiting at most ``timeout_s`` (None: no limit). False when the wait
        timed out (the call is no longer admitted); raises SlotsFull past ``limit``."""
        with self._lock:
            if self.admitted >= self.limit:
                raise SlotsFull(f"{self.admitted} calls in flight (limit {self.limit})")
            self.admitted += 1
            self.admitted_total += 1
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        # Sync grpc reports a call without a deadline as ~1e18 s left: wait as long as a lock can.
        wait = -1 if timeout_s is None else max(0.0, min(timeout_s, TIMEOUT_MAX))
        if turn.acquire(timeout=wait):
            return True
        with self._lock:
            if turn in self._waiters:
                self._waiters.remove(turn)
                self.admitted -= 1
                return False
        return True  # the slot was handed over as the wait ran out: it is this call's now

    def leave(self) -> None:
        """Give the slot back: to the oldest waiter if there is one."""
        with self._lock:
            self.admitted -= 1
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1
