"""Deadline against a slow service, trace propagation, and round-robin over two real services.

The slow service is a test double of the dependency (a DecisionService that never answers in
time); the balancing test runs two real decision-service processes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import grpc
import pytest
from litellm import Router
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway_client import GatewayClientSettings
from gateway_client.strategy import METADATA_KEY, Reason, install
from routeiq.decision.v1 import decision_pb2, decision_pb2_grpc

from .deployments import GROUP, IDS, MESSAGES, MODEL_LIST
from .servers import DecisionServiceProcess

pytestmark = pytest.mark.integration


class SlowDecisionService(decision_pb2_grpc.DecisionServiceServicer):
    """Answers Route only after the caller has gone (or after 10 s), recording what it saw."""

    def __init__(self) -> None:
        self.calls = 0
        self.ended_before_answer = 0
        self.metadata: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def Route(self, request: Any, context: grpc.ServicerContext) -> Any:
        ended = threading.Event()
        context.add_callback(ended.set)
        with self._lock:
            self.calls += 1
            self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
        if ended.wait(10.0):  # the client's deadline ended the call first
            with self._lock:
                self.ended_before_answer += 1
        ranked = [decision_pb2.RankedCandidate(id=c.id, score=1.0) for c in request.candidates]
        return decision_pb2.RouteResponse(ranked=ranked[::-1], decision_id="late")


@pytest.fixture
def slow_service() -> Iterator[tuple[str, SlowDecisionService]]:
    servicer = SlowDecisionService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_a_slow_service_is_cut_off_at_the_deadline_and_gets_the_trace_context(
    slow_service: tuple[str, SlowDecisionService],
) -> None:
    address, servicer = slow_service
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = GatewayClientSettings(
        target=address, deadline_ms=100, breaker_failure_threshold=2, fallback_policy="ordered"
    )
    router = Router(model_list=[dict(d) for d in MODEL_LIST], num_retries=0)
    strategy = install(router, settings, tracer_provider=provider)
    tracer = provider.get_tracer("test")
    for _ in range(3):
        metadata: dict[str, Any] = {}
        with tracer.start_as_current_span("gateway.request"):
            response = router.completion(model=GROUP, messages=MESSAGES, metadata=metadata)
        assert response._hidden_params["model_id"] == IDS[0]  # the ordered fallback
        assert metadata[METADATA_KEY]["fallback"] is True
    # Two calls were made and both ended at the client's deadline, before the service answered;
    # the third pick found the breaker open and made no call.
    assert servicer.calls == 2
    # The server learns of the client's cancellation on its own thread, a moment after the
    # client moved on: wait for it (liveness, not speed) instead of racing it.
    deadline = time.monotonic() + 15
    while servicer.ended_before_answer < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert servicer.ended_before_answer == 2
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.BREAKER_OPEN
    spans = exporter.get_finished_spans()
    failed = [s for s in spans if s.name == "routeiq.route"][:2]
    for seen, route_span in zip(servicer.metadata, failed, strict=True):
        trace_id = f"{route_span.context.trace_id:032x}"
        assert seen["traceparent"].split("-")[1] == trace_id
        assert route_span.attributes["routeiq.fallback_reason"] == Reason.RPC_FAILURE
        (event,) = [e for e in route_span.events if e.name == "routeiq.fallback"]
        assert event.attributes["error"] == "DEADLINE_EXCEEDED"
    strategy.close()


class CountingForwarder:
    """A loopback TCP forwarder in front of one service that counts the bytes clients send it:
    which backend the channel's calls reach, seen from outside gRPC."""

    def __init__(self, host: str, upstream: str) -> None:
        self.upstream = upstream
        self.sent = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.address = f"{host}:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            host, port = self.upstream.rsplit(":", 1)
            server = socket.create_connection((host, int(port)))
            for src, dst, counted in ((client, server, True), (server, client, False)):
                thread = threading.Thread(target=self._pipe, args=(src, dst, counted), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pipe(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        src.settimeout(0.2)
        try:
            while not self._stop.is_set():
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if counted:
                    with self._lock:
                        self.sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5.0)


@pytest.fixture(scope="module")
def two_services(knn_bundle_dir: Any, encoder_dir: Any) -> Iterator[list[DecisionServiceProcess]]:
    """Two real decision services: on 127.0.0.1 and 127.0.0.2 (all of 127/8 is loopback)."""
    first = DecisionServiceProcess(knn_bundle_dir, encoder_dir)
    second = DecisionServiceProcess(knn_bundle_dir, encoder_dir, "--host", "127.0.0.2")
    second.address = f"127.0.0.2:{second.port}"
    started: list[DecisionServiceProcess] = []
    try:
        for service in (first, second):
            started.append(service.start())
        yield started
    finally:
        for service in started:
            service.stop()


def test_round_robin_spreads_routes_over_both_services(
    two_services: list[DecisionServiceProcess],
) -> None:
    # What a headless Service's dns:/// name resolves to, written as an address list: no DNS
    # name resolves to two loopback addresses here. The channel config is the same
    # (round_robin), as GatewayClientSettings builds it for dns:, ipv4: and ipv6: targets.
    forwarders = [CountingForwarder(s.address.rsplit(":", 1)[0], s.address) for s in two_services]
    try:
        target = "ipv4:" + ",".join(f.address for f in forwarders)
        settings = GatewayClientSettings(target=target, deadline_ms=5000, fallback_policy="ordered")
        router = Router(model_list=[dict(d) for d in MODEL_LIST], num_retries=0)
        strategy = install(router, settings)
        metadata: dict[str, Any] = {}
        router.completion(model=GROUP, messages=MESSAGES, metadata=metadata)  # connects both
        before = [f.sent for f in forwarders]
        calls = 20
        for _ in range(calls):
            metadata = {}
            router.completion(model=GROUP, messages=MESSAGES, metadata=metadata)
            assert metadata[METADATA_KEY]["reason"] == Reason.ROUTED
        strategy.close()
        spread = [f.sent - b for f, b in zip(forwarders, before, strict=True)]
    finally:
        for forwarder in forwarders:
            forwarder.close()
    print("bytes sent to each service over", calls, "calls:", spread)
    # Round robin alternates: each service received about half of the calls' bytes.
    assert min(spread) > 0
    assert max(spread) <= 2 * min(spread)
