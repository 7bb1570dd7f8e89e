"""Connection rotation and a lost backend cost no fallback: two real decision services behind
one round-robin channel, a steady stream of picks through a real ``litellm.Router``, the
servers ending every connection after 1 s (max_connection_age) and one of them killed outright
mid-stream with calls in flight on it.

Each decision is held 100 ms on the service (its test-only debug delay), so calls are always in
flight when the connections rotate and when the backend dies: a call the dead backend had taken
ends UNAVAILABLE, and only the channel's retry policy resends it to the surviving one within
the same deadline. With ``grpc.enable_retries=0`` (the old channel options) those calls, and any
sent on a connection the server was just closing, came back as fallbacks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from litellm import Router

from gateway_client import DecisionClient, GatewayClientSettings
from gateway_client.strategy import METADATA_KEY, Reason, install
from routeiq.decision.v1 import decision_pb2

from .deployments import GROUP, MESSAGES, MODEL_LIST
from .servers import DecisionServiceProcess

pytestmark = pytest.mark.integration

DELAY_MS = 100
MAX_CONNECTION_AGE_S = 1.0
WORKERS = 4
BEFORE_KILL = 60  # picks before the kill: >= 60 * 0.1 s / 4 workers = 1.5 s of rotation
AFTER_KILL = 60


@pytest.fixture
def rotating_services(
    knn_bundle_dir: Any, encoder_dir: Any
) -> Iterator[list[DecisionServiceProcess]]:
    env = {
        "ROUTEIQ_DEBUG_DECISION_DELAY_MS": str(DELAY_MS),
        "ROUTEIQ_MAX_CONNECTION_AGE_S": str(MAX_CONNECTION_AGE_S),
    }
    first = DecisionServiceProcess(knn_bundle_dir, encoder_dir, **env)
    second = DecisionServiceProcess(knn_bundle_dir, encoder_dir, "--host", "127.0.0.2", **env)
    second.address = f"127.0.0.2:{second.port}"
    started: list[DecisionServiceProcess] = []
    try:
        for service in (first, second):
            started.append(service.start())
        yield started
    finally:
        for service in started:
            service.stop()


class InFlight:
    """Counts the Route calls the strategy has in flight (wraps the real client)."""

    def __init__(self, client: DecisionClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.now = 0

    def route(self, request: decision_pb2.RouteRequest, timeout_s: float, *rest: Any) -> Any:
        with self._lock:
            self.now += 1
        try:
            return self._client.route(request, timeout_s, *rest)
        finally:
            with self._lock:
                self.now -= 1

    async def route_async(self, *args: Any) -> Any:
        raise NotImplementedError  # the stream below calls the sync entry point only


def test_rotation_and_a_killed_backend_cause_no_fallback(
    rotating_services: list[DecisionServiceProcess],
) -> None:
    doomed, survivor = rotating_services
    target = "ipv4:" + ",".join(s.address for s in rotating_services)
    # A generous deadline: the test is about failures, not speed, and a retried call spends
    # part of its deadline on the attempt the dead backend took.
    settings = GatewayClientSettings(
        target=target, deadline_ms=10_000, breaker_failure_threshold=1, fallback_policy="ordered"
    )
    client = DecisionClient.from_settings(settings)
    spy = InFlight(client)
    router = Router(model_list=[dict(d) for d in MODEL_LIST], num_retries=0)
    strategy = install(router, settings, spy, outcomes=False)  # type: ignore[arg-type]
    for _ in range(4):  # both connections up and both encoders warm before the stream
        router.completion(model=GROUP, messages=MESSAGES)

    reasons: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    total = BEFORE_KILL + AFTER_KILL
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while not stop.is_set():
                metadata: dict[str, Any] = {}
                router.completion(model=GROUP, messages=MESSAGES, metadata=metadata)
                with lock:
                    reasons.append(metadata[METADATA_KEY]["reason"])
                    if len(reasons) >= total:
                        stop.set()
        except BaseException as error:  # surfaced below, not lost in the thread
            errors.append(error)
            stop.set()

    def picks() -> int:
        with lock:
            return len(reasons)

    routed_before = strategy.recorder.stats.routed
    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    try:
        while picks() < BEFORE_KILL and not stop.is_set():
            stop.wait(0.01)
        # A pick in flight is a call on one of the two connections; round robin puts about
        # half of them on the backend about to die.
        in_flight_at_kill = spy.now
        killed_at = picks()
        assert doomed.process is not None
        doomed.process.kill()  # SIGKILL: no GOAWAY, no drain, the sockets just close
        for thread in threads:
            thread.join(120)
    finally:
        stop.set()
        strategy.close()
        client.close()
    assert not errors, errors
    stats = strategy.recorder.stats
    print(
        f"picks: {len(reasons)} ({killed_at} before the kill, {len(reasons) - killed_at} after); "
        f"Route calls in flight at the kill: {in_flight_at_kill}; "
        f"server max_connection_age {MAX_CONNECTION_AGE_S} s, decision delay {DELAY_MS} ms; "
        f"fallbacks: {stats.fallbacks}; reasons: {sorted(set(reasons))}"
    )
    assert in_flight_at_kill >= 1
    assert stats.fallbacks == 0
    assert set(reasons) == {Reason.ROUTED}
    assert stats.routed - routed_before == len(reasons) >= total
    # The survivor answers alone now, and the breaker (threshold 1) never opened.
    with DecisionClient(survivor.address) as direct:
        request = decision_pb2.RouteRequest(
            prompt="hello", candidates=[decision_pb2.Candidate(id="a", model_name="gpt-4o")]
        )
        assert direct.route(request, timeout_s=10.0).ranked[0].id == "a"
