"""Decision telemetry (``routeiq.router_decision.v1``) from Jaeger's HTTP API or OTLP JSON files.

The decision service records each decision as a span event named
``routeiq.router_decision.v1`` whose attribute ``routeiq.router_decision.payload`` holds the
JSON payload. Two ways in:

* **Jaeger** ``GET {base}/api/traces?service=S&start=µs&end=µs&limit=N``; Jaeger shows span
  events as span ``logs`` whose ``fields`` carry ``event`` (the event name) and the
  attributes. Jaeger's query API has no offset, so pages are walked backwards in time: each
  next page ends just before the oldest span start of the previous one, until a page comes
  back short, the window is exhausted or ``max_traces`` is reached. Traces seen twice are
  read once.
* **OTLP JSON** as the Collector's ``file`` exporter writes it: one
  ``ExportTraceServiceRequest`` JSON object per line
  (``resourceSpans[].scopeSpans[].spans[].events[]`` with ``attributes[{key, value:
  {stringValue}}]``).

An event becomes a training example only with **features** (the query embedding the service
attaches when an operator opts in: the event attributes ``routeiq.query_embedding.int8_b64``
(base64 of int8 values) and ``routeiq.query_embedding.scale``, as
``decision_service.telemetry`` writes them; or ``payload["query_embedding"]``, a list of
floats or ``{"scale": s, "values": [int8...]}``) and a **label** for the selected model:
``outcome.quality`` (or ``quality_score``) in [0, 1], or 0.0 when ``outcome.status`` is
``failure``, ``error`` or ``timeout`` (no answer is a bad answer). A successful call with no
quality score carries no label. Anything else is counted by reason and skipped, never filled
in. The decision service's own event says ``status: success`` (a decision was made) and
carries no quality, so its events become examples only once an outcome with a quality score
is joined to them by ``event_id``; until then they are counted as ``no_label``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from trainer.errors import RoutingDataError
from trainer.sources.event_fields import (
    decision_features,
    finite_number,
)

EVENT_NAME = "routeiq.router_decision.v1"
PAYLOAD_KEY = "routeiq.router_decision.payload"
CONTRACT_VERSION = "v1"
FAILED_STATUSES = frozenset({"failure", "error", "timeout"})


@dataclass(frozen=True)
class DecisionExample:
    event_id: str
    trace_id: str
    model_name: str
    embedding: np.ndarray  # float32 [dim]
    quality: float
    cost: float | None


@dataclass
class TelemetryReport:
    spans_seen: int = 0
    events_seen: int = 0
    used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    pages: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "spans_seen": self.spans_seen,
            "events_seen": self.events_seen,
            "used": self.used,
            "skipped": dict(sorted(self.skipped.items())),
            "pages": self.pages,
        }


def parse_payload(
    raw: object, report: TelemetryReport, attributes: Mapping[str, object] | None = None
) -> DecisionExample | None:
    """One decision payload (JSON text) and its event's other attributes -> an example, or
    None with the reason counted."""
    report.events_seen += 1
    reason_or_example = _parse(raw, attributes or {})
    if isinstance(reason_or_example, str):
        report.skipped[reason_or_example] += 1
        return None
    report.used += 1
    return reason_or_example


def _parse(raw: object, attributes: Mapping[str, object]) -> DecisionExample | str:
    if not isinstance(raw, str):
        return "payload_missing"
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        return "payload_invalid_json"
    if not isinstance(payload, dict):
        return "payload_not_object"
    if payload.get("contract_version") != CONTRACT_VERSION:
        return "contract_version_unsupported"
    features = decision_features(payload, attributes)
    if isinstance(features, str):
        return features
    model, embedding = features
    outcome = payload.get("outcome")
    quality = _quality(outcome if isinstance(outcome, dict) else {})
    if quality is None:
        return "no_label"
    cost = finite_number(outcome.get("cost")) if isinstance(outcome, dict) else None
    return DecisionExample(
        event_id=str(payload.get("event_id") or ""),
        trace_id=str(payload.get("trace_id") or ""),
        model_name=model,
        embedding=embedding,
        quality=quality,
        cost=cost if cost is not None and cost >= 0 else None,
    )


def _quality(outcome: dict[str, Any]) -> float | None:
    for key in ("quality", "quality_score"):
        value = finite_number(outcome.get(key))
        if value is not None and 0.0 <= value <= 1.0:
            return value
    if outcome.get("status") in FAILED_STATUSES:
        return 0.0
    return None


# ---- Jaeger
def _jaeger_events(
    trace: dict[str, Any], report: TelemetryReport, names: frozenset[str] = frozenset({EVENT_NAME})
) -> Iterator[dict[str, object]]:
    for span in trace.get("spans") or []:
        if not isinstance(span, dict):
            report.skipped["span_malformed"] += 1
            continue
        report.spans_seen += 1
        for log in span.get("logs") or []:
            fields: dict[str, object] = {
                str(f.get("key")): f.get("value")
                for f in (log.get("fields") or [] if isinstance(log, dict) else [])
                if isinstance(f, dict)
            }
            if fields.get("event") in names:
                yield fields


def _span_starts(trace: dict[str, Any]) -> list[int]:
    return [
        int(s["startTime"])
        for s in trace.get("spans") or []
        if isinstance(s, dict) and isinstance(s.get("startTime"), int)
    ]


def read_jaeger(
    base_url: str,
    *,
    service: str,
    start_us: int,
    end_us: int,
    page_size: int = 100,
    max_traces: int = 100_000,
    client: httpx.Client | None = None,
    timeout_s: float = 30.0,
) -> tuple[list[DecisionExample], TelemetryReport]:
    """Every decision example in ``[start_us, end_us]`` (Unix µs) for ``service``."""
    report = TelemetryReport()
    examples: list[DecisionExample] = []
    traces = iter_jaeger_traces(
        base_url,
        report,
        service=service,
        start_us=start_us,
        end_us=end_us,
        page_size=page_size,
        max_traces=max_traces,
        client=client,
        timeout_s=timeout_s,
    )
    for trace in traces:
        for fields in _jaeger_events(trace, report):
            example = parse_payload(fields.get(PAYLOAD_KEY), report, fields)
            if example is not None:
                examples.append(example)
    return examples, report


def iter_jaeger_traces(
    base_url: str,
    report: TelemetryReport,
    *,
    service: str,
    start_us: int,
    end_us: int,
    page_size: int = 100,
    max_traces: int = 100_000,
    client: httpx.Client | None = None,
    timeout_s: float = 30.0,
) -> Iterator[dict[str, Any]]:
    """Each trace in the window once, newest page first (see the module docstring)."""
    seen: set[str] = set()
    own = client is None
    http = client or httpx.Client(timeout=timeout_s)
    try:
        end = end_us
        while end >= start_us and len(seen) < max_traces:
            params: dict[str, str | int] = {
                "service": service,
                "start": start_us,
                "end": end,
                "limit": page_size,
            }
            response = http.get(f"{base_url.rstrip('/')}/api/traces", params=params)
            response.raise_for_status()
            body = response.json()
            report.pages += 1
            traces = body.get("data") if isinstance(body, dict) else None
            if not isinstance(traces, list):
                raise ValueError(f"Jaeger answered without a data list: {str(body)[:200]}")
            oldest = None
            for trace in traces:
                if not isinstance(trace, dict):
                    report.skipped["trace_malformed"] += 1
                    continue
                starts = _span_starts(trace)
                if starts:
                    oldest = min(starts) if oldest is None else min(oldest, min(starts))
                trace_id = str(trace.get("traceID", ""))
                if trace_id in seen:
                    continue
                seen.add(trace_id)
                yield trace
            if len(traces) < page_size or oldest is None or oldest - 1 >= end:
                break
            end = oldest - 1
    finally:
        if own:
            http.close()


# ---- OTLP JSON (Collector file exporter)
def _attribute_value(value: object) -> object:
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in value:
            return value[key]
    return None


def read_otlp_json(paths: Iterable[Path]) -> tuple[list[DecisionExample], TelemetryReport]:
    """Examples from Collector file-exporter output; bad lines are counted and skipped.

    A file none of whose lines is a JSON object cannot be such output at all (a wrong
    path, a Jaeger export): that raises ``RoutingDataError`` naming its first line, rather
    than reporting an empty read.
    """
    report = TelemetryReport()
    examples: list[DecisionExample] = []
    for path in paths:
        first_bad: int | None = None
        objects = 0
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except json.JSONDecodeError:
                report.skipped["line_invalid_json"] += 1
                first_bad = first_bad or number
                continue
            objects += isinstance(request, dict)
            first_bad = first_bad or (None if isinstance(request, dict) else number)
            for _, attributes in otlp_events(request, report):
                example = parse_payload(attributes.get(PAYLOAD_KEY), report, attributes)
                if example is not None:
                    examples.append(example)
        if first_bad is not None and not objects:
            raise RoutingDataError(
                "no line is an OTLP JSON object",
                path=path,
                line=first_bad,
                fix="point --otlp at the OpenTelemetry Collector file exporter's output "
                "(one ExportTraceServiceRequest JSON object per line)",
            )
    return examples, report


def otlp_events(
    request: object, report: TelemetryReport, names: frozenset[str] = frozenset({EVENT_NAME})
) -> Iterator[tuple[str, dict[str, object]]]:
    """(event name, attributes) of each event named in ``names`` in one OTLP JSON request."""
    for span in _otlp_spans(request, report):
        report.spans_seen += 1
        for event in span.get("events") or []:
            if not isinstance(event, dict) or event.get("name") not in names:
                continue
            yield (
                str(event["name"]),
                {
                    str(a.get("key")): _attribute_value(a.get("value"))
                    for a in event.get("attributes") or []
                    if isinstance(a, dict)
                },
            )


def _otlp_spans(request: object, report: TelemetryReport) -> Iterator[dict[str, Any]]:
    if not isinstance(request, dict):
        report.skipped["line_not_object"] += 1
        return
    for resource in request.get("resourceSpans") or []:
        for scope in (resource or {}).get("scopeSpans") or []:
            for span in (scope or {}).get("spans") or []:
                if isinstance(span, dict):
                    yield span
                else:
                    report.skipped["span_malformed"] += 1


def write_examples(examples: list[DecisionExample], out: Path) -> Path:
    """Write JSONL: event_id, trace_id, model_name, performance, cost, embedding per line."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for e in examples:
            record = {
                "event_id": e.event_id,
                "trace_id": e.trace_id,
                "model_name": e.model_name,
                "performance": e.quality,
                "cost": e.cost,
                "embedding": [round(float(v), 6) for v in e.embedding],
            }
            fh.write(json.dumps(record) + "\n")
    return out
