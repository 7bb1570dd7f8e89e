"""tools.bench.h2load's pure parts on captured text: no sockets, no h2load run."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from routeiq.decision.v1 import decision_pb2 as pb
from tools.bench import h2load

# h2load 1.52's summary of a 3 s level against the service (-c 1 -m 16).
OUTPUT = """\
finished in 3.02s, 554.67 req/s, 121.15KB/s
requests: 1664 total, 1680 started, 1664 done, 1664 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1664 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 363.44KB (372164) total, 59.31KB (60732) headers (space savings 60.49%), 260.43KB
                     min         max         mean         sd        +/- sd
time for request:      539us    101.90ms     28.54ms     14.27ms    69.77%
time for connect:       60us        60us        60us         0us   100.00%
"""

METRICS = """\
# HELP routeiq_decision_latency_seconds Time to make one decision.
# TYPE routeiq_decision_latency_seconds histogram
routeiq_decision_latency_seconds_bucket{le="0.005",strategy="routeiq-knn"} 10.0
routeiq_decision_latency_seconds_bucket{le="+Inf",strategy="routeiq-knn"} 120.0
routeiq_decision_latency_seconds_count{strategy="routeiq-knn"} 120.0
routeiq_decision_latency_seconds_sum{strategy="routeiq-knn"} 0.6
routeiq_decision_latency_seconds_bucket{le="+Inf",strategy="cheapest"} 5.0
routeiq_decision_latency_seconds_count{strategy="cheapest"} 5.0
routeiq_decision_latency_seconds_sum{strategy="cheapest"} 0.001
# HELP routeiq_errors_total Calls answered with a non-OK gRPC status, by code.
# TYPE routeiq_errors_total counter
routeiq_errors_total{code="INTERNAL"} 3.0
routeiq_errors_total{code="RESOURCE_EXHAUSTED"} 4.0
"""


def test_parse_output_reads_counts_rate_and_request_times_in_ms() -> None:
    out = h2load.parse_output(OUTPUT)
    assert out["elapsed_ms"] == pytest.approx(3020.0)
    assert out["rps"] == 554.67
    assert (out["requests_started"], out["requests_succeeded"], out["status_2xx"]) == (
        1680,
        1664,
        1664,
    )
    assert (out["min_ms"], out["max_ms"], out["mean_ms"]) == pytest.approx((0.539, 101.9, 28.54))


def test_parse_output_refuses_text_that_is_not_an_h2load_summary() -> None:
    with pytest.raises(ValueError, match="unexpected h2load output"):
        h2load.parse_output("connect to 127.0.0.1:1 failed")


def test_decisions_and_errors_are_summed_over_every_label_set() -> None:
    assert h2load.metric_sum(METRICS, h2load.DECISIONS) == 125
    assert h2load.metric_sum(METRICS, h2load.ERRORS) == 7
    assert h2load.metric_sum(METRICS, h2load.IN_FLIGHT) == 0


def test_grpc_frame_is_a_length_prefixed_message_the_service_can_decode() -> None:
    request = pb.RouteRequest(prompt="hi", candidates=[pb.Candidate(id="a", model_name="m")])
    frame = h2load.grpc_frame(request.SerializeToString())
    compressed, length = struct.unpack(">BI", frame[:5])
    assert (compressed, length) == (0, len(frame) - 5)
    assert pb.RouteRequest.FromString(frame[5:]) == request


def test_command_sends_grpc_headers_a_deadline_and_one_connection(tmp_path: Path) -> None:
    run = h2load.H2LoadSweep("h2load", "127.0.0.1:5000", 9100, 1, tmp_path / "body")
    command = run.command(streams=8, seconds=1.5)
    assert command[-1] == "http://127.0.0.1:5000/routeiq.decision.v1.DecisionService/Route"
    joined = " ".join(command)
    assert "-c 1 -m 8 -D 1500ms" in joined
    for header in ("content-type: application/grpc", "te: trailers", "grpc-timeout: 10S"):
        assert command[command.index(header) - 1] == "-H"


def test_only_loopback_is_loaded() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        h2load.H2LoadSweep("h2load", "10.0.0.5:5000", 9100, 1, Path("body"))


def test_without_h2load_on_path_the_sweep_says_so_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    assert h2load.sweep("127.0.0.1:1", 1, 1, [1, 2], 1.0, 0.05) == {
        "available": False,
        "reason": h2load.MISSING,
    }
