"""Join decisions with their outcomes and feedback by decision id: training data from traffic.

Three event kinds (docs/learning.md), read from Jaeger, OTLP JSON (the Collector's file
exporter) or the decision service's events file (``telemetry_events_file``, JSON lines of
``{"name", "attributes"}``):

* ``routeiq.router_decision.v1``: the served model (``selected_deployment``), the query
  embedding (only when the service runs with ``telemetry_embedding``) and
  ``routeiq.propensity``, the probability the served model was chosen with;
* ``routeiq.router_outcome.v1``: what became of the call (``result``, or the legacy
  ``status``), from the service's RecordOutcome or the gateway's own span event;
* ``routeiq.router_feedback.v1``: a quality score in [0, 1] sent later (RecordFeedback).

The label of a decision is its feedback score (a judge's before a user's before an
application's; the mean when one source sent several), else its outcome: success 1.0,
every other result 0.0 (an escalation is a failure of the chosen model). Only the served
model is observed: the other models' cells stay unobserved, never 0. Nothing is filled in:
each decision that yields no example is counted under the reason it was dropped.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from trainer.sources.event_fields import decision_features, finite_number
from trainer.sources.telemetry import (
    EVENT_NAME,
    PAYLOAD_KEY,
    TelemetryReport,
    _jaeger_events,
    iter_jaeger_traces,
    otlp_events,
)

OUTCOME_EVENT = "routeiq.router_outcome.v1"
OUTCOME_PAYLOAD_KEY = "routeiq.router_outcome.payload"
FEEDBACK_EVENT = "routeiq.router_feedback.v1"
FEEDBACK_PAYLOAD_KEY = "routeiq.router_feedback.payload"
EVENT_NAMES = frozenset({EVENT_NAME, OUTCOME_EVENT, FEEDBACK_EVENT})
ATTR_PROPENSITY = "routeiq.propensity"
SOURCE_PRIORITY = ("judge", "user", "application")
# Legacy statuses an outcome without a result means (see RecordOutcomeRequest.result).
RESULT_OF_STATUS = {"success": "success", "fallback": "success", "timeout": "timeout"}


@dataclass(frozen=True)
class TrafficExample:
    decision_id: str
    model_name: str  # the served model
    embedding: np.ndarray  # float32 [dim]
    label: float  # in [0, 1]
    label_source: str  # "judge", "user", "application" or "outcome"
    propensity: float  # probability the served model was chosen with, in (0, 1]
    cost_usd: float | None


@dataclass
class JoinReport:
    events: Counter[str] = field(default_factory=Counter)  # by event name
    decisions: int = 0
    joined: int = 0  # decisions with an outcome or feedback
    labelled: int = 0  # examples produced
    label_sources: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)  # decisions, by reason
    orphans: Counter[str] = field(default_factory=Counter)  # outcomes/feedback w/o decision
    propensity_assumed_one: int = 0  # decisions from a service that logged none
    read: TelemetryReport = field(default_factory=TelemetryReport)

    def as_dict(self) -> dict[str, object]:
        return {
            "events": dict(sorted(self.events.items())),
            "decisions": self.decisions,
            "joined": self.joined,
            "labelled": self.labelled,
            "label_sources": dict(sorted(self.label_sources.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "orphans": dict(sorted(self.orphans.items())),
            "propensity_assumed_one": self.propensity_assumed_one,
            "unreadable": dict(sorted(self.read.skipped.items())),
        }


class TrafficJoin:
    """Collects events from any number of sources, then ``join()`` pairs them by decision id."""

    def __init__(self) -> None:
        self.report = JoinReport()
        self._decisions: dict[str, tuple[dict[str, object], Mapping[str, object]]] = {}
        self._outcomes: dict[str, dict[str, object]] = {}
        self._reads = 0  # files and queries read: each is one source
        # decision id -> source -> how often each feedback payload (canonical JSON) was read
        self._feedback: defaultdict[str, defaultdict[str, Counter[str]]] = defaultdict(
            lambda: defaultdict(Counter)
        )

    def add(self, name: str, attributes: Mapping[str, object], source: str = "") -> None:
        """One event read from ``source`` (a file, a Jaeger query): the same feedback read
        from two sources (the events file and the traces of the same service) counts once,
        while feedback sent twice shows twice in every source and counts twice."""
        key = {EVENT_NAME: PAYLOAD_KEY, OUTCOME_EVENT: OUTCOME_PAYLOAD_KEY}.get(
            name, FEEDBACK_PAYLOAD_KEY
        )
        payload = _json_object(attributes.get(key))
        if payload is None:
            self.report.read.skipped[f"{name}:payload_invalid"] += 1
            return
        self.report.events[name] += 1
        if name == EVENT_NAME:
            # The same decision read twice (two sources, overlapping windows) counts once.
            self._decisions[str(payload.get("event_id") or "")] = (payload, attributes)
        elif name == OUTCOME_EVENT:
            # The gateway's span event and the service's RecordOutcome event describe the
            # same call; the last read wins, and they agree field by field.
            self._outcomes[str(payload.get("decision_id") or "")] = payload
        else:
            key = json.dumps(payload, sort_keys=True)
            self._feedback[str(payload.get("decision_id") or "")][source][key] += 1

    def _next_source(self, name: object) -> str:
        self._reads += 1
        return f"{self._reads}:{name}"

    def add_otlp_json(self, paths: Iterable[Path]) -> None:
        for path in paths:
            source = self._next_source(path)
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                except json.JSONDecodeError:
                    self.report.read.skipped["line_invalid_json"] += 1
                    continue
                for name, attributes in otlp_events(request, self.report.read, EVENT_NAMES):
                    self.add(name, attributes, source=source)

    def add_events_file(self, paths: Iterable[Path]) -> None:
        for path in paths:
            source = self._next_source(path)
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                record = _json_object(line) if line.strip() else None
                attributes = record.get("attributes") if record else None
                if record is None or not isinstance(attributes, dict):
                    self.report.read.skipped["line_invalid"] += 1
                    continue
                if record.get("name") in EVENT_NAMES:
                    self.add(str(record["name"]), attributes, source=source)

    def add_jaeger(
        self,
        base_url: str,
        *,
        service: str,
        start_us: int,
        end_us: int,
        client: httpx.Client | None = None,
    ) -> None:
        """Every event of ``service`` in a Jaeger window (Unix µs)."""
        traces = iter_jaeger_traces(
            base_url,
            self.report.read,
            service=service,
            start_us=start_us,
            end_us=end_us,
            client=client,
        )
        source = self._next_source(f"jaeger:{base_url}")
        for trace in traces:
            for fields in _jaeger_events(trace, self.report.read, EVENT_NAMES):
                self.add(str(fields["event"]), fields, source=source)

    def join(self) -> list[TrafficExample]:
        report = self.report
        report.decisions = len(self._decisions)
        report.orphans["outcome_without_decision"] = len(set(self._outcomes) - set(self._decisions))
        for decision_id in set(self._feedback) - set(self._decisions):
            report.orphans["feedback_without_decision"] += len(self._feedback_of(decision_id))
        examples = []
        for decision_id, (payload, attributes) in self._decisions.items():
            example = self._example(decision_id, payload, attributes)
            if isinstance(example, str):
                report.dropped[example] += 1
                continue
            report.labelled += 1
            report.label_sources[example.label_source] += 1
            examples.append(example)
        return examples

    def _example(
        self, decision_id: str, payload: dict[str, object], attributes: Mapping[str, object]
    ) -> TrafficExample | str:
        outcome = self._outcomes.get(decision_id)
        feedback = self._feedback_of(decision_id)
        if outcome is None and not feedback:
            return "no_outcome_or_feedback"
        self.report.joined += 1
        if outcome is not None and outcome.get("fallback"):
            return "served_by_fallback"  # another deployment answered: not this decision's
        features = decision_features(payload, attributes)
        if isinstance(features, str):
            return features
        model, embedding = features
        propensity = finite_number(_as_number(attributes.get(ATTR_PROPENSITY)))
        if propensity is None:
            self.report.propensity_assumed_one += 1
            propensity = 1.0  # a service without exploration chose deterministically
        if not 0.0 < propensity <= 1.0:
            return "invalid_propensity"
        label = _feedback_label(feedback)
        if label is None and outcome is not None:
            label = _outcome_label(outcome)
        if label is None:
            return "no_label"
        cost = finite_number(outcome.get("cost_usd")) if outcome is not None else None
        return TrafficExample(decision_id, model, embedding, label[0], label[1], propensity, cost)

    def _feedback_of(self, decision_id: str) -> list[dict[str, object]]:
        """A decision's feedback, each payload as often as the source that read it most."""
        by_source = self._feedback.get(decision_id)
        if not by_source:
            return []
        most: Counter[str] = Counter()
        for counts in by_source.values():
            most |= counts  # multiset union: the larger count of each payload
        return [json.loads(key) for key in sorted(most.elements())]


def _feedback_label(feedback: list[dict[str, object]]) -> tuple[float, str] | None:
    for source in SOURCE_PRIORITY:
        scores = [
            score
            for f in feedback
            if (f.get("source") or "application") == source
            and (score := finite_number(f.get("score"))) is not None
            and 0.0 <= score <= 1.0
        ]
        if scores:
            return float(np.mean(scores)), source
    return None


def _outcome_label(outcome: Mapping[str, object]) -> tuple[float, str] | None:
    result = outcome.get("result") or RESULT_OF_STATUS.get(str(outcome.get("status")), "failure")
    if outcome.get("status") is None and outcome.get("result") is None:
        return None
    return (1.0 if result == "success" else 0.0), "outcome"


def _json_object(raw: object) -> dict[str, object] | None:
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _as_number(value: object) -> object:
    if isinstance(value, str):  # OTLP JSON and Jaeger may carry numbers as strings
        try:
            return float(value)
        except ValueError:
            return None
    return value
