"""Decide slots: bounded holders, waiters served in arrival order, a bounded queue that
refuses at once, and a wait that gives up at its deadline without losing a slot."""

from __future__ import annotations

import threading
import time

import pytest

from decision_service.slots import DecideSlots, SlotsFull


def wait_until(condition, timeout_s: float = 10.0) -> None:
    give_up = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < give_up, "condition not reached"
        time.sleep(0.001)


def test_size_slots_are_taken_without_waiting_and_the_next_waits():
    slots = DecideSlots(2, limit=10)
    assert slots.enter(0) and slots.enter(0)
    assert not slots.enter(0.01)  # both taken: the wait runs out
    assert slots.admitted == 2
    slots.leave()
    assert slots.enter(0)
    assert slots.admitted_total == 4


def test_waiters_are_served_in_arrival_order():
    slots = DecideSlots(1, limit=10)
    assert slots.enter()
    order: list[int] = []

    def caller(i: int) -> None:
        assert slots.enter(10.0)
        order.append(i)
        slots.leave()

    threads = []
    for i in range(6):
        t = threading.Thread(target=caller, args=(i,))
        t.start()
        threads.append(t)
        wait_until(lambda n=i + 2: slots.admitted == n)  # queued before the next starts
    slots.leave()
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3, 4, 5]
    assert slots.admitted == 0


def test_past_the_limit_enter_refuses_at_once():
    slots = DecideSlots(1, limit=2)
    assert slots.enter()
    waiter = threading.Thread(target=lambda: slots.enter(10.0) and slots.leave())
    waiter.start()
    wait_until(lambda: slots.admitted == 2)
    started = time.monotonic()
    with pytest.raises(SlotsFull, match=r"2 calls in flight \(limit 2\)"):
        slots.enter(10.0)
    assert time.monotonic() - started < 5.0  # refused, not queued for the 10 s
    slots.leave()
    waiter.join()
    assert slots.admitted == 0


def test_a_wait_that_runs_out_leaves_the_queue_and_keeps_the_count():
    slots = DecideSlots(1, limit=5)
    assert slots.enter()
    assert not slots.enter(0.01)
    assert slots.admitted == 1  # the one that gave up is gone
    slots.leave()
    assert slots.enter(0)  # the slot came back, not to the departed waiter


def test_no_deadline_and_huge_deadlines_wait_like_none():
    slots = DecideSlots(1, limit=5)
    for timeout in (None, 1e18, float("inf")):
        assert slots.enter(timeout)
        slots.leave()


def test_sizes_must_be_positive():
    with pytest.raises(ValueError, match=">= 1"):
        DecideSlots(0, 1)
