"""Redis names shared by publishers and sync agents, and the publisher's announcement.

Keys (``prefix`` defaults to ``routeiq``; ``name`` is the registry entry name):

* ``{prefix}:registry:{name}:channel:{channel}``: pub/sub topic. ``trainer promote`` and
  ``rollback`` publish ``{"channel", "version", "action", "updated_utc"}`` there after the
  channel pointer is written. The message is a hint: agents re-read the pointer from the
  store, which stays the one source of truth (a forged message cannot install anything).
* ``{prefix}:sync:{name}:slot:{i}`` for ``i < slots``: download leases (``sync.lease``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "routeiq"


@dataclass(frozen=True)
class RedisKeys:
    name: str
    prefix: str = DEFAULT_PREFIX

    def channel_topic(self, channel: str) -> str:
        return f"{self.prefix}:registry:{self.name}:channel:{channel}"

    def slot(self, index: int) -> str:
        return f"{self.prefix}:sync:{self.name}:slot:{index}"


def announce(redis_url: str, keys: RedisKeys, channel: str, pointer: dict[str, object]) -> int:
    """Tell subscribed agents that ``channel`` moved; how many received it.

    Raises ``redis.RedisError`` when Redis cannot be reached: the caller decides whether
    that matters (the promotion itself is already in the store; agents poll as a fallback).
    """
    import redis

    message = {
        "channel": channel,
        "version": pointer.get("version"),
        "action": pointer.get("action"),
        "updated_utc": pointer.get("updated_utc"),
    }
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return int(client.publish(keys.channel_topic(channel), json.dumps(message)))
    finally:
        client.close()
