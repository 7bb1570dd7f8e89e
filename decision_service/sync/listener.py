"""Change notifications: a thread subscribed to the channel's Redis topic wakes the agent.

Pub/sub delivers only to connected subscribers, so every (re)subscription also wakes the
agent once: whatever was announced while the connection was down is found by that check
of the store. While Redis is unreachable ``connected`` is False and the agent polls at its
fallback interval; the thread keeps reconnecting with a capped backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class ChangeListener:
    def __init__(
        self,
        connect: Callable[[], Any],
        topic: str,
        wake: threading.Event,
        *,
        on_message: Callable[[dict[str, object]], None] = lambda _: None,
        on_state: Callable[[bool], None] = lambda _: None,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self._connect = connect
        self.topic = topic
        self._wake = wake
        self._on_message = on_message
        self._on_state = on_state
        self._reconnect_max_s = reconnect_max_s
        self._stop = threading.Event()
        self.connected = False
        self._thread = threading.Thread(target=self._run, name="routeiq-sync-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _set_connected(self, value: bool) -> None:
        if value != self.connected:
            self.connected = value
            self._on_state(value)

    def _run(self) -> None:
        import redis

        delay = 0.2
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self._connect().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.topic)
                self._set_connected(True)
                delay = 0.2
                self._wake.set()  # messages sent while we were away: check the store once
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(_decode(message.get("data")))
                        self._wake.set()
            except (redis.RedisError, OSError) as exc:
                if self.connected:
                    log.warning("Redis notifications lost (%s); polling the store", exc)
                self._set_connected(False)
                self._stop.wait(delay)
                delay = min(self._reconnect_max_s, delay * 2)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(redis.RedisError, OSError):
                        pubsub.close()
        self._set_connected(False)


def _decode(data: object) -> dict[str, object]:
    try:
        loaded = json.loads(data) if isinstance(data, str | bytes) else None
    except ValueError:
        loaded = None
    return loaded if isinstance(loaded, dict) else {}
