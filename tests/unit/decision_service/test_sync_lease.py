"""Download slots and change notifications against a real redis-server on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from decision_service.bundle_registry.notify import RedisKeys, announce
from decision_service.sync.lease import DownloadSlots, LeaseLost
from decision_service.sync.listener import ChangeListener
from tests.local_redis import RedisServer

KEYS = RedisKeys("router", "test")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.close()


def _slots(
    client: redis.Redis, holder: str, *, slots: int = 2, ttl_s: float = 5.0
) -> DownloadSlots:
    return DownloadSlots(client, KEYS, slots=slots, ttl_s=ttl_s, holder=holder, poll_s=0.01)


def test_never_more_holders_than_slots(client: redis.Redis) -> None:
    bound, agents, rounds = 3, 12, 4
    holding = 0
    most = 0
    done = 0
    guard = threading.Lock()
    stop = threading.Event()

    def agent(index: int) -> None:
        nonlocal holding, most, done
        slots = _slots(client, f"agent-{index}", slots=bound)
        for _ in range(rounds):
            lease, _ = slots.acquire(stop)
            assert lease is not None
            with guard:
                holding += 1
                most = max(most, holding)
            time.sleep(0.01)  # the "download"
            with guard:
                holding -= 1
            lease.release()
        with guard:
            done += 1

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert done == agents
    assert most == bound  # contended all the way up to the bound, never past it
    assert client.keys("test:sync:router:slot:*") == []  # every lease released


def test_renewal_keeps_a_slot_past_its_ttl(client: redis.Redis) -> None:
    owner = _slots(client, "owner", slots=1, ttl_s=1.0)
    lease = owner.try_acquire()
    assert lease is not None
    time.sleep(2.5)  # two and a half TTLs: only renewal keeps it
    assert _slots(client, "other", slots=1).try_acquire() is None
    assert owner.holders() == {KEYS.slot(0): "owner"}
    lease.check()
    lease.release()
    assert owner.holders() == {}


def test_a_lost_lease_stops_the_download_and_release_spares_the_successor(
    client: redis.Redis,
) -> None:
    lease = _slots(client, "slow", slots=1, ttl_s=0.3).try_acquire()
    assert lease is not None
    client.set(KEYS.slot(0), "successor")  # as if the key had expired and been taken
    deadline = time.monotonic() + 5
    while not lease.lost and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(LeaseLost):
        lease.check()
    lease.release()
    assert client.get(KEYS.slot(0)) == b"successor"


def test_a_killed_holder_frees_its_slot_within_the_ttl(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    code = (
        "import sys, time, redis\n"
        "from decision_service.bundle_registry.notify import RedisKeys\n"
        "from decision_service.sync.lease import DownloadSlots\n"
        f"c = redis.Redis.from_url({redis_server.url!r})\n"
        "s = DownloadSlots(c, RedisKeys('router', 'test'), slots=1, ttl_s=1.0, holder='doomed')\n"
        "assert s.try_acquire() is not None\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    assert client.get(KEYS.slot(0)) == b"doomed"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # Nobody renews it now: the key dies with its TTL (at most 1 s), and then it is ours.
    assert 0 < client.pttl(KEYS.slot(0)) <= 1000
    lease, _ = _slots(client, "next", slots=1).acquire(threading.Event())
    assert lease is not None and lease.key == KEYS.slot(0)
    assert client.get(KEYS.slot(0)) == b"next"
    lease.release()


def test_notifications_wake_and_resubscribe_after_a_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    wake = threading.Event()
    messages: list[dict[str, object]] = []
    states: list[bool] = []
    listener = ChangeListener(
        lambda: redis.Redis.from_url(server.url, socket_connect_timeout=1),
        KEYS.channel_topic("stable"),
        wake,
        on_message=messages.append,
        on_state=states.append,
        reconnect_max_s=0.2,
    )
    listener.start()
    try:
        assert wake.wait(10) and states == [True]  # subscribed: one check of the store
        wake.clear()
        pointer = {"version": "v7", "action": "promote", "updated_utc": "now"}
        assert announce(server.url, KEYS, "stable", pointer) == 1
        assert wake.wait(10)
        assert messages == [{"channel": "stable", **pointer}]

        server.stop()
        deadline = time.monotonic() + 10
        while listener.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert states == [True, False]
        wake.clear()
        server.start()
        assert wake.wait(15) and states == [True, False, True]  # back, and checks again
    finally:
        listener.stop()
        server.stop()
