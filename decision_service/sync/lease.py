"""Fleet-wide download slots: N Redis keys, each held by one agent with a renewed TTL.

Slot ``i`` is the key ``{prefix}:sync:{name}:slot:{i}``. An agent takes a free slot with
``SET key <agent> NX PX ttl``, renews it with a compare-and-expire every third of the TTL
while it downloads, and frees it with a compare-and-delete: it only ever extends or deletes
a slot that still names it. A dead or partitioned agent stops renewing, so its slot frees
itself within the TTL. At most N agents hold a slot at once because Redis grants each key
to one holder; a holder whose renewal finds the key gone or taken marks the lease lost and
the download stops before its next object (``Lease.check``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from decision_service.bundle_registry.notify import RedisKeys

log = logging.getLogger(__name__)

# KEYS[1] slot, ARGV[1] holder, ARGV[2] ttl ms: extend only our own lease.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] slot, ARGV[1] holder: delete only our own lease (never one a successor took).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaseLost(RuntimeError):
    """The slot expired or went to another agent before the download finished."""


class Lease:
    """One held slot; renews itself on a daemon thread until ``release``."""

    def __init__(self, client: Any, key: str, holder: str, ttl_s: float) -> None:
        self.key = key
        self.holder = holder
        self._client = client
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._done = threading.Event()
        self.lost = False
        self._thread = threading.Thread(
            target=self._keep, args=(ttl_s / 3,), name="routeiq-sync-lease", daemon=True
        )
        self._thread.start()

    def _keep(self, every_s: float) -> None:
        import redis

        while not self._done.wait(every_s):
            try:
                if not self._renew(keys=[self.key], args=[self.holder, self._ttl_ms]):
                    self.lost = True
                    log.warning("lease %s lost (expired or taken); download stops", self.key)
                    return
            except redis.RedisError as exc:
                # Redis is down: nobody can take the slot from us either. Keep downloading;
                # if the key expired meanwhile, the next successful renewal finds it gone.
                log.warning("cannot renew lease %s: %s", self.key, exc)

    def check(self) -> None:
        """Raise ``LeaseLost`` when the slot is no longer ours (called between objects)."""
        if self.lost:
            raise LeaseLost(f"download slot {self.key} was lost")

    def release(self) -> None:
        import redis

        self._done.set()
        self._thread.join(timeout=5)
        try:
            self._release(keys=[self.key], args=[self.holder])
        except redis.RedisError as exc:
            log.warning("cannot release lease %s (it expires by itself): %s", self.key, exc)


class DownloadSlots:
    """``slots`` leases shared by every agent that uses the same Redis, prefix and name."""

    def __init__(
        self,
        client: Any,
        keys: RedisKeys,
        *,
        slots: int,
        ttl_s: float,
        holder: str,
        poll_s: float = 0.05,
    ) -> None:
        self.client = client
        self.keys = keys
        self.slots = slots
        self.ttl_s = ttl_s
        self.holder = holder
        self.poll_s = poll_s

    def try_acquire(self) -> Lease | None:
        """A free slot now, or None. Slots are tried in random order to spread contention."""
        order = list(range(self.slots))
        random.shuffle(order)
        ttl_ms = max(1, int(self.ttl_s * 1000))
        for index in order:
            key = self.keys.slot(index)
            if self.client.set(key, self.holder, nx=True, px=ttl_ms):
                return Lease(self.client, key, self.holder, self.ttl_s)
        return None

    def acquire(self, stop: threading.Event) -> tuple[Lease | None, float]:
        """Wait for a slot; returns it (None if ``stop`` was set) and the seconds waited.

        Raises ``redis.RedisError`` when Redis cannot be reached: the caller decides to
        download without a slot (degraded) or to retry.
        """
        start = time.monotonic()
        while not stop.is_set():
            lease = self.try_acquire()
            if lease is not None:
                return lease, time.monotonic() - start
            # Jittered, so waiters that collided once do not keep colliding in lockstep.
            stop.wait(self.poll_s * random.uniform(0.5, 1.5))
        return None, time.monotonic() - start

    def holders(self) -> dict[str, str]:
        """Slot key -> holding agent, for status and tests."""
        found = {}
        for index in range(self.slots):
            value = self.client.get(self.keys.slot(index))
            if value is not None:
                found[self.keys.slot(index)] = value.decode() if isinstance(value, bytes) else value
        return found
