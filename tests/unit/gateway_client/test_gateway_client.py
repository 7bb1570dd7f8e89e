"""DecisionClient: error classification, channel options and the sync/async call paths,
over a fake channel (no sockets)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from gateway_client.client import (
    DecisionClient,
    ErrorKind,
    channel_options,
    classify_error,
    make_channel,
    retry_policy,
    status_code_of,
)
from gateway_client.settings import GatewayClientSettings
from routeiq.decision.v1 import decision_pb2


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


# -- classification --------------------------------------------------------------------------


def test_invalid_argument_is_a_caller_error() -> None:
    error = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "no candidates")
    assert classify_error(error) is ErrorKind.CALLER_ERROR
    assert status_code_of(error) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    ],
)
def test_other_status_codes_are_failures(code: grpc.StatusCode) -> None:
    assert classify_error(FakeRpcError(code)) is ErrorKind.FAILURE


def test_non_grpc_errors_are_failures() -> None:
    assert classify_error(ValueError("Cannot invoke RPC on closed channel!")) is ErrorKind.FAILURE
    assert classify_error(grpc.RpcError()) is ErrorKind.FAILURE  # no code() at all
    assert status_code_of(ValueError()) is None


# -- channel options -------------------------------------------------------------------------


ROUTE_RETRY = {
    "name": [{"service": "routeiq.decision.v1.DecisionService", "method": "Route"}],
    "retryPolicy": {
        "maxAttempts": 3,
        "initialBackoff": "0.0050s",
        "maxBackoff": "0.0200s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    },
}


def test_retries_are_on_and_route_retries_unavailable() -> None:
    options = dict(channel_options("127.0.0.1:50051"))
    assert options["grpc.keepalive_time_ms"] > 0
    # 0 would also turn off the transparent retry of calls a GOAWAY'd connection never served.
    assert options["grpc.enable_retries"] == 1
    config = json.loads(options["grpc.service_config"])
    assert "loadBalancingConfig" not in config  # one address: pick_first
    assert config["methodConfig"] == [ROUTE_RETRY]
    assert config["retryThrottling"] == {"maxTokens": 20, "tokenRatio": 0.1}


def test_without_a_retry_policy_a_plain_target_gets_no_service_config() -> None:
    options = dict(channel_options("127.0.0.1:50051", policy=None))
    assert "grpc.service_config" not in options
    assert options["grpc.enable_retries"] == 1
    single = dict(channel_options("127.0.0.1:50051", policy=retry_policy(1, 5, 20)))
    assert "grpc.service_config" not in single


def test_dns_target_balances_round_robin_and_retries() -> None:
    options = dict(channel_options("dns:///routeiq.svc:50051"))
    config = json.loads(options["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["methodConfig"] == [ROUTE_RETRY]
    only_balanced = dict(channel_options("ipv4:127.0.0.1:1,127.0.0.2:1", policy=None))
    assert json.loads(only_balanced["grpc.service_config"]) == {
        "loadBalancingConfig": [{"round_robin": {}}]
    }


def test_the_settings_retry_policy_reaches_the_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_channel(target: str, options: list[tuple[str, Any]]) -> str:
        seen.update(options)
        return "channel"

    monkeypatch.setattr(grpc, "insecure_channel", fake_channel)
    settings = GatewayClientSettings(
        target="h:1", retry_max_attempts=4, retry_initial_backoff_ms=2, retry_max_backoff_ms=8
    )
    assert make_channel(settings) == "channel"
    (method,) = json.loads(seen["grpc.service_config"])["methodConfig"]
    assert method["retryPolicy"]["maxAttempts"] == 4
    assert method["retryPolicy"]["initialBackoff"] == "0.0020s"
    assert method["retryPolicy"]["maxBackoff"] == "0.0080s"


def test_extra_options_win() -> None:
    options = dict(channel_options("h:1", [("grpc.keepalive_time_ms", 1234), ("x", 1)]))
    assert options["grpc.keepalive_time_ms"] == 1234
    assert options["x"] == 1


# -- call paths over a fake channel ----------------------------------------------------------


def response(decision_id: str = "d") -> decision_pb2.RouteResponse:
    return decision_pb2.RouteResponse(decision_id=decision_id)


class FakeFuture:
    """Enough of grpc.Future for DecisionClient.route_async."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._cancelled = False
        self._result: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Any], None]] = []

    def _finish(self) -> None:
        with self._lock:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def set_result(self, value: Any) -> None:
        self._result = value
        self._finish()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._finish()

    def cancel(self) -> bool:
        if self._done:
            return False
        self._cancelled = True
        self._finish()
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def exception(self) -> BaseException | None:
        return self._error

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._result

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)


class FakeMultiCallable:
    def __init__(self) -> None:
        self.outcome: Callable[[], decision_pb2.RouteResponse] = response
        self.delay_s = 0.0
        self.timeouts: list[float | None] = []
        self.futures: list[FakeFuture] = []
        self.cancellable = True
        self.metadata: list[Any] = []

    def __call__(
        self, request: Any, timeout: float | None = None, metadata: Any = None
    ) -> decision_pb2.RouteResponse:
        self.timeouts.append(timeout)
        self.metadata.append(metadata)
        return self.outcome()

    def future(
        self, request: Any, timeout: float | None = None, metadata: Any = None
    ) -> FakeFuture:
        self.timeouts.append(timeout)
        self.metadata.append(metadata)
        future = FakeFuture()
        if not self.cancellable:
            future.cancel = lambda: False  # type: ignore[method-assign]
        self.futures.append(future)

        def complete() -> None:
            try:
                value = self.outcome()
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(value)

        if self.delay_s == 0:
            complete()  # already done: the callback runs inline
        elif self.delay_s > 0:
            timer = threading.Timer(self.delay_s, complete)
            timer.daemon = True
            timer.start()
        # delay_s < 0: never completes on its own
        return future


class FakeChannel:
    def __init__(self) -> None:
        self.route = FakeMultiCallable()
        self.closed = False

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> FakeMultiCallable:
        assert method.startswith("/routeiq.decision.v1.DecisionService/")
        return self.route if method.endswith("/Route") else FakeMultiCallable()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def client(channel: FakeChannel) -> DecisionClient:
    return DecisionClient("fake:0", channel=channel)  # type: ignore[arg-type]


REQUEST = decision_pb2.RouteRequest(prompt="hi")


def test_route_passes_the_deadline(client: DecisionClient, channel: FakeChannel) -> None:
    assert client.route(REQUEST, 0.05).decision_id == "d"
    assert channel.route.timeouts == [0.05]


def test_route_raises_rpc_errors(client: DecisionClient, channel: FakeChannel) -> None:
    def fail() -> decision_pb2.RouteResponse:
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)

    channel.route.outcome = fail
    with pytest.raises(FakeRpcError):
        client.route(REQUEST, 0.05)


def test_a_given_channel_is_not_closed(client: DecisionClient, channel: FakeChannel) -> None:
    client.close()
    assert not channel.closed


async def test_route_async_completed_inline(client: DecisionClient) -> None:
    assert (await client.route_async(REQUEST, 0.05)).decision_id == "d"


async def test_route_async_completed_on_another_thread_does_not_block_the_loop(
    client: DecisionClient, channel: FakeChannel
) -> None:
    channel.route.delay_s = 0.2
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    result = await client.route_async(REQUEST, 1.0)
    elapsed = time.perf_counter() - started
    task.cancel()
    assert result.decision_id == "d"
    assert elapsed >= 0.15
    assert ticks >= 5  # the loop kept running while the call was in flight
    assert channel.route.timeouts == [1.0]


async def test_route_async_raises_the_rpc_error(
    client: DecisionClient, channel: FakeChannel
) -> None:
    def fail() -> decision_pb2.RouteResponse:
        raise FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED)

    channel.route.outcome = fail
    channel.route.delay_s = 0.01
    with pytest.raises(FakeRpcError) as caught:
        await client.route_async(REQUEST, 0.05)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_cancelling_the_await_cancels_the_call(
    client: DecisionClient, channel: FakeChannel
) -> None:
    channel.route.delay_s = -1  # never answers
    task = asyncio.create_task(client.route_async(REQUEST, 10.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert channel.route.futures[0].cancelled()


def test_route_async_works_from_several_event_loops(
    client: DecisionClient, channel: FakeChannel
) -> None:
    channel.route.delay_s = 0.01
    for _ in range(3):
        assert asyncio.run(client.route_async(REQUEST, 1.0)).decision_id == "d"

    results: list[str] = []

    def in_thread() -> None:
        results.append(asyncio.run(client.route_async(REQUEST, 1.0)).decision_id)

    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["d"] * 4


def test_a_late_answer_after_the_loop_closed_is_harmless(
    client: DecisionClient, channel: FakeChannel
) -> None:
    channel.route.delay_s = -1
    channel.route.cancellable = False

    async def start_and_abandon() -> None:
        asyncio.create_task(client.route_async(REQUEST, 10.0))  # noqa: RUF006
        await asyncio.sleep(0)

    asyncio.run(start_and_abandon())  # the loop closes with the call still pending
    future = channel.route.futures[0]
    assert not future.done()
    future.set_result(response())  # the done-callback finds the loop closed; must not raise
