"""The Jaeger reader against an HTTP server on loopback answering in Jaeger's JSON shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from trainer.sources.telemetry import EVENT_NAME, PAYLOAD_KEY, read_jaeger

pytestmark = pytest.mark.integration


def _payload(event_id: str, **outcome: object) -> str:
    return json.dumps(
        {
            "contract_version": "v1",
            "event_id": event_id,
            "selected_deployment": "gpt-4o",
            "query_embedding": [1.0, 0.0],
            "outcome": {"status": "success", **outcome},
        }
    )


def _trace(n: int, start_us: int, logs: list[object]) -> dict[str, object]:
    return {
        "traceID": f"{n:032x}",
        "spans": [
            {
                "traceID": f"{n:032x}",
                "spanID": f"{n:016x}",
                "operationName": "/routeiq.decision.v1.DecisionService/Route",
                "startTime": start_us,
                "duration": 900,
                "tags": [],
                "logs": logs,
                "processID": "p1",
            }
        ],
        "processes": {"p1": {"serviceName": "routeiq-decision", "tags": []}},
        "warnings": None,
    }


def _decision_log(payload: str) -> dict[str, object]:
    return {
        "timestamp": 1,
        "fields": [
            {"key": "event", "type": "string", "value": EVENT_NAME},
            {"key": PAYLOAD_KEY, "type": "string", "value": payload},
        ],
    }


# Seven traces one second apart, newest first as Jaeger returns them.
TRACES = [
    _trace(7, 7_000_000, [_decision_log(_payload("e7", quality=1.0))]),
    _trace(6, 6_000_000, [_decision_log(_payload("e6", quality=0.5))]),
    _trace(5, 5_000_000, [_decision_log("{broken")]),
    _trace(4, 4_000_000, [_decision_log(_payload("e4"))]),  # success without a score
    _trace(3, 3_000_000, [{"fields": [{"key": "event", "value": "other"}]}]),
    {"traceID": "bad", "spans": ["not a span", {"startTime": 2_000_000, "logs": None}]},
    _trace(1, 1_000_000, [_decision_log(_payload("e1", quality=0.25))]),
]


@pytest.fixture
def jaeger() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    requests: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            requests.append(query)
            if url.path != "/api/traces" or query.get("service") != ["routeiq-decision"]:
                self.send_error(400)
                return
            start, end = int(query["start"][0]), int(query["end"][0])
            limit = int(query["limit"][0])

            def first_start(trace: dict[str, object]) -> int:
                spans = trace["spans"]
                assert isinstance(spans, list)
                starts = [s["startTime"] for s in spans if isinstance(s, dict) and "startTime" in s]
                return min(starts) if starts else 0

            hits = [t for t in TRACES if start <= first_start(t) <= end]
            body = {"data": hits[:limit], "total": 0, "limit": 0, "offset": 0, "errors": None}
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_pages_through_the_window_and_skips_what_cannot_train(jaeger):
    url, requests = jaeger
    examples, report = read_jaeger(
        url, service="routeiq-decision", start_us=500_000, end_us=8_000_000, page_size=2
    )
    assert [e.event_id for e in examples] == ["e7", "e6", "e1"]
    assert [e.quality for e in examples] == [1.0, 0.5, 0.25]
    assert report.events_seen == 5 and report.used == 3
    assert dict(report.skipped) == {"payload_invalid_json": 1, "no_label": 1, "span_malformed": 1}
    # Pages walk backwards: each ends 1 µs before the oldest span of the previous page.
    ends = [int(r["end"][0]) for r in requests]
    assert ends == [8_000_000, 5_999_999, 3_999_999, 1_999_999]
    assert report.pages == 4
    assert all(r["limit"] == ["2"] and r["start"] == ["500000"] for r in requests)


def test_time_window_limits_what_is_read(jaeger):
    url, _ = jaeger
    examples, report = read_jaeger(
        url, service="routeiq-decision", start_us=5_500_000, end_us=6_500_000, page_size=10
    )
    assert [e.event_id for e in examples] == ["e6"] and report.pages == 1


def test_a_jaeger_error_is_raised_not_swallowed(jaeger):
    import httpx

    url, _ = jaeger
    with pytest.raises(httpx.HTTPStatusError):
        read_jaeger(url, service="other", start_us=0, end_us=1)
