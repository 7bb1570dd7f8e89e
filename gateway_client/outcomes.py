"""Request outcomes: built from LiteLLM's logging data, joined to the decision by decision id,
and sent to ``DecisionService.RecordOutcome`` off the request path.

:class:`OutcomeReporter` owns a bounded queue and one daemon thread: the request path only does
``put_nowait``; a full queue drops the outcome and counts it
(``routeiq_gateway_outcome_drops_total``). No LiteLLM import here.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from opentelemetry.trace import Span

from routeiq.decision.v1 import decision_pb2

from .metrics import GatewayMetrics
from .request import request_metadata

logger = logging.getLogger(__name__)

METADATA_KEY = "routeiq_decision"  # the strategy's record in the request metadata
PICK_ID_KEY = "pick_id"  # the key of the request span kept in the strategy's SpanRegistry
OWNER_KEY = "strategy_instance"  # which strategy made the pick


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one request (the fields of ``RecordOutcomeRequest``)."""

    decision_id: str
    deployment_id: str
    model_name: str
    status: str  # "success", "failure", "fallback", "error" or "timeout"
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None
    fallback: bool
    fallback_reason: str
    error_type: str
    # "success", "provider_error", "refusal", "timeout" or "escalation" (OutcomeResult).
    result: str = "success"
    escalated_to_model: str = ""

    def payload(self) -> dict[str, Any]:
        return asdict(self)

    def to_proto(self) -> decision_pb2.RecordOutcomeRequest:
        request = decision_pb2.RecordOutcomeRequest(
            decision_id=self.decision_id,
            deployment_id=self.deployment_id,
            model_name=self.model_name,
            status=self.status,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            latency_ms=self.latency_ms,
            fallback=self.fallback,
            fallback_reason=self.fallback_reason,
            error_type=self.error_type,
            result=RESULTS[self.result],
            escalated_to_model=self.escalated_to_model,
        )
        if self.cost_usd is not None:
            request.cost_usd = self.cost_usd
        return request


def _seconds(value: object) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


RESULTS = {
    "success": decision_pb2.OUTCOME_RESULT_SUCCESS,
    "provider_error": decision_pb2.OUTCOME_RESULT_PROVIDER_ERROR,
    "refusal": decision_pb2.OUTCOME_RESULT_REFUSAL,
    "timeout": decision_pb2.OUTCOME_RESULT_TIMEOUT,
    "escalation": decision_pb2.OUTCOME_RESULT_ESCALATION,
}


def _is_timeout(error: object) -> bool:
    name = type(error).__name__.lower()
    return "timeout" in name


def _is_refusal(error: object) -> bool:
    # LiteLLM raises ContentPolicyViolationError when a provider's filter refuses the prompt.
    return "contentpolicy" in type(error).__name__.lower()


def _finish_reasons(log: Mapping[str, Any]) -> set[str]:
    """Finish reasons of the response's choices ("content_filter" marks a filtered answer)."""
    response = log.get("response")
    choices = response.get("choices") if isinstance(response, Mapping) else None
    reasons = set()
    for choice in choices if isinstance(choices, list) else []:
        if isinstance(choice, Mapping) and isinstance(choice.get("finish_reason"), str):
            reasons.add(choice["finish_reason"])
    return reasons


def _result(failed: bool, error: object, log: Mapping[str, Any]) -> tuple[str, str]:
    """(status, result): the legacy status and the OutcomeResult name for one logged call."""
    if failed:
        if _is_timeout(error):
            return "timeout", "timeout"
        return "failure", "refusal" if _is_refusal(error) else "provider_error"
    if "content_filter" in _finish_reasons(log):
        return "success", "refusal"
    return "success", "success"


def decision_record(kwargs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The strategy's record of the pick, from LiteLLM's logging kwargs."""
    params = kwargs.get("litellm_params")
    metadata = None
    if isinstance(params, Mapping):
        for key in ("metadata", "litellm_metadata"):
            value = params.get(key)
            if isinstance(value, Mapping) and METADATA_KEY in value:
                metadata = value
                break
    if metadata is None:
        metadata = request_metadata(dict(kwargs))
    record = metadata.get(METADATA_KEY) if metadata else None
    return record if isinstance(record, Mapping) else None


def outcome_from_logging(
    kwargs: Mapping[str, Any],
    start_time: object,
    end_time: object,
    *,
    failed: bool,
) -> Outcome | None:
    """The outcome of a call LiteLLM logged, or None when the strategy did not pick it."""
    record = decision_record(kwargs)
    if record is None:
        return None
    log = kwargs.get("standard_logging_object")
    log = log if isinstance(log, Mapping) else {}
    started = _seconds(log.get("startTime")) or _seconds(start_time)
    ended = _seconds(log.get("endTime")) or _seconds(end_time)
    latency_ms = (ended - started) * 1000.0 if started is not None and ended is not None else 0.0
    cost = log.get("response_cost")
    if cost is None:
        cost = kwargs.get("response_cost")
    error = kwargs.get("exception")
    fallback = bool(record.get("fallback"))
    # A request served through the static fallback still succeeded; `fallback` marks it.
    status, result = _result(failed, error, log)
    hidden = log.get("hidden_params")
    model_name = str(log.get("model") or kwargs.get("model") or "")
    if isinstance(hidden, Mapping) and hidden.get("litellm_model_name"):
        model_name = str(hidden["litellm_model_name"])
    return Outcome(
        decision_id=str(record.get("decision_id") or ""),
        deployment_id=str(log.get("model_id") or record.get("deployment_id") or ""),
        model_name=model_name,
        status=status,
        input_tokens=_int(log.get("prompt_tokens")),
        output_tokens=_int(log.get("completion_tokens")),
        latency_ms=max(latency_ms, 0.0),
        cost_usd=float(cost) if isinstance(cost, int | float) and not failed else None,
        fallback=fallback,
        fallback_reason=str(record.get("reason") or "") if fallback else "",
        error_type=type(error).__name__ if failed and error is not None else "",
        result=result,
    )


class SpanRegistry:
    """The request span current at each pick, kept until its outcome is logged (bounded: the
    oldest entries go first, so a call that never logs leaks nothing)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._spans: OrderedDict[str, Span] = OrderedDict()

    def put(self, key: str, span: Span) -> None:
        with self._lock:
            self._spans[key] = span
            while len(self._spans) > self._capacity:
                self._spans.popitem(last=False)

    def pop(self, key: object) -> Span | None:
        if not isinstance(key, str):
            return None
        with self._lock:
            return self._spans.pop(key, None)

    def __len__(self) -> int:
        return len(self._spans)


class OutcomeSender(Protocol):
    def record_outcome(
        self, request: decision_pb2.RecordOutcomeRequest, timeout_s: float
    ) -> None: ...


_STOP = object()


class OutcomeReporter:
    """Sends outcomes to ``RecordOutcome`` on a background thread through a bounded queue."""

    def __init__(
        self,
        sender: OutcomeSender,
        metrics: GatewayMetrics,
        *,
        max_queue: int = 10_000,
        timeout_s: float = 1.0,
    ) -> None:
        self._sender = sender
        self._metrics = metrics
        self._timeout_s = timeout_s
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, outcome: Outcome) -> bool:
        """Queue ``outcome`` without blocking; False (and counted) when the queue is full."""
        self._ensure_started()
        try:
            self._queue.put_nowait(outcome)
        except queue.Full:
            self.dropped += 1
            self._metrics.outcome_drops.inc()
            return False
        return True

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued outcome was handled (for tests and shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (within ``timeout_s``) and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            return
        thread.join(timeout_s)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="routeiq-outcomes", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, Outcome)
                self._send(item)
            finally:
                self._queue.task_done()

    def _send(self, outcome: Outcome) -> None:
        try:
            self._sender.record_outcome(outcome.to_proto(), self._timeout_s)
        except Exception as error:
            self.failed += 1
            self._metrics.outcomes.labels(result="failed").inc()
            logger.debug("RecordOutcome failed: %s", error)
            return
        self.sent += 1
        self._metrics.outcomes.labels(result="sent").inc()
