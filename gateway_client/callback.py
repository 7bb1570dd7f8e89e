"""``RouteIQOutcomeCallback``: the LiteLLM callback that reports each routed request's outcome.

On success and on failure (sync and async, streaming included: LiteLLM logs a stream once, when
it ends) it reads the strategy's record of the pick from the request metadata and LiteLLM's
standard logging object (tokens, cost, latency), then

- adds a ``routeiq.router_outcome.v1`` event to the request's span (the span that was current
  when the deployment was picked), joined to the decision by ``decision_id``;
- when ``record_outcomes`` is on, queues a ``RecordOutcome`` call (off the request path).

It never raises into LiteLLM.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from opentelemetry.trace import TracerProvider

from .outcomes import (
    OWNER_KEY,
    PICK_ID_KEY,
    Outcome,
    OutcomeReporter,
    SpanRegistry,
    decision_record,
    outcome_from_logging,
)
from .telemetry import emit_outcome

logger = logging.getLogger(__name__)

_SEEN_CAPACITY = 4096


class RouteIQOutcomeCallback(CustomLogger):
    """Turns LiteLLM's success/failure logging of a routed request into an outcome."""

    def __init__(
        self,
        owner: str,
        spans: SpanRegistry,
        reporter: OutcomeReporter | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        super().__init__()
        self._owner = owner
        self._spans = spans
        self._reporter = reporter
        self._tracer_provider = tracer_provider
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.last_outcome: Outcome | None = None

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def reporter(self) -> OutcomeReporter | None:
        return self._reporter

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.handle(kwargs, start_time, end_time, failed=False)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.handle(kwargs, start_time, end_time, failed=True)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.handle(kwargs, start_time, end_time, failed=False)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.handle(kwargs, start_time, end_time, failed=True)

    def handle(
        self, kwargs: dict[str, Any], start_time: Any, end_time: Any, *, failed: bool
    ) -> None:
        """Report one logged call (once, even if LiteLLM logs it sync and async)."""
        try:
            record = decision_record(kwargs)
            if record is None or record.get(OWNER_KEY) != self._owner:
                return
            if not self._first_time(kwargs.get("litellm_call_id"), failed):
                return
            outcome = outcome_from_logging(kwargs, start_time, end_time, failed=failed)
            if outcome is None:
                return
            span = self._spans.pop(record.get(PICK_ID_KEY))
            emit_outcome(outcome.payload(), span, self._tracer_provider)
            if self._reporter is not None and outcome.decision_id:
                self._reporter.submit(outcome)
            self.last_outcome = outcome
        except Exception:
            logger.exception("could not report a RouteIQ outcome")

    def _first_time(self, call_id: object, failed: bool) -> bool:
        if not isinstance(call_id, str) or not call_id:
            return True
        key = f"{call_id}:{failed}"
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > _SEEN_CAPACITY:
                self._seen.popitem(last=False)
        return True


class OutcomeDispatcher(CustomLogger):
    """The one callback registered with LiteLLM for every strategy in the process (LiteLLM keeps
    a single instance of each callback class): hands each logged call to the callback of the
    strategy that picked its deployment."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: weakref.WeakValueDictionary[str, RouteIQOutcomeCallback] = (
            weakref.WeakValueDictionary()
        )

    def add(self, callback: RouteIQOutcomeCallback) -> None:
        self._callbacks[callback.owner] = callback

    def remove(self, callback: RouteIQOutcomeCallback) -> None:
        if self._callbacks.get(callback.owner) is callback:
            del self._callbacks[callback.owner]

    def _dispatch(self, kwargs: dict[str, Any], start: Any, end: Any, *, failed: bool) -> None:
        try:
            record = decision_record(kwargs)
            callback = self._callbacks.get(str(record.get(OWNER_KEY))) if record else None
        except Exception:
            logger.exception("could not read a RouteIQ decision record")
            return
        if callback is not None:
            callback.handle(kwargs, start, end, failed=failed)

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._dispatch(kwargs, start_time, end_time, failed=False)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._dispatch(kwargs, start_time, end_time, failed=True)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._dispatch(kwargs, start_time, end_time, failed=False)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._dispatch(kwargs, start_time, end_time, failed=True)


_dispatcher: OutcomeDispatcher | None = None
_dispatcher_lock = threading.Lock()


def dispatcher() -> OutcomeDispatcher:
    """The process-wide dispatcher, registered with LiteLLM on first use."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            import litellm

            _dispatcher = OutcomeDispatcher()
            litellm.logging_callback_manager.add_litellm_callback(_dispatcher)
        return _dispatcher
