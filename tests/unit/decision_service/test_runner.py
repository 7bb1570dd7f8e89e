"""The runner and the decide path: encoder work takes a decide slot, cheap decisions never
do, admission and deadlines fail fast, and metrics count what happened."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from decision_service.decide import Decider, Deferred
from decision_service.domain import CandidateIn, Decision, Outcome, RouteQuery
from decision_service.embedding_front import EmbeddingFront
from decision_service.errors import DeadlineTooShort, InvalidRequest, NotReady, Overloaded
from decision_service.metrics import ServiceMetrics
from decision_service.runner import RouteRunner
from decision_service.versions import VersionRegistry

CANDIDATES = [CandidateIn("a", "gpt-4o"), CandidateIn("b", "gpt-4o-mini")]
PROMPT = "hello, how is the weather today"
QUERY = RouteQuery(candidates=CANDIDATES, prompt=PROMPT)


def make_runner(
    encoder, bundle, *, max_in_flight: int = 8, workers: int = 2, **decider_kwargs: Any
) -> RouteRunner:
    decider = Decider(
        VersionRegistry(encoder, bundle),
        EmbeddingFront(encoder, cache_size=16),
        **decider_kwargs,
    )
    return RouteRunner(
        decider,
        ServiceMetrics(),
        workers=workers,
        max_in_flight=max_in_flight,
        min_deadline_s=0.001,
    )


def sample(runner: RouteRunner, name: str, **labels: str) -> float:
    value = runner.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    give_up = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < give_up, "condition not reached"
        time.sleep(0.001)


def test_a_cached_prompt_is_decided_without_a_slot_and_with_one_lookup(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    front = runner.decider.front
    runs = encoder.runs

    first = runner.route(QUERY, 5.0)
    assert runner.slot_runs == 1 and encoder.runs == runs + 1  # a miss: encoder in a slot
    assert (front.stats.cache_hits, front.stats.cache_misses) == (0, 1)

    again = runner.route(QUERY, 5.0)
    assert runner.slot_runs == 1 and encoder.runs == runs + 1  # the hit took no slot
    # One lookup for the cached request: one hit, and the miss was counted once, not twice.
    assert (front.stats.cache_hits, front.stats.cache_misses) == (1, 1)
    assert [c.id for c in again.ranked] == [c.id for c in first.ranked]
    assert [c.score for c in again.ranked] == pytest.approx([c.score for c in first.ranked])
    assert again.prompt_tokens == first.prompt_tokens == 6
    assert again.decision_id != first.decision_id

    runner.route(RouteQuery(candidates=CANDIDATES, prompt="prove the theorem"), 5.0)
    assert runner.slot_runs == 2


def test_a_given_embedding_is_decided_without_a_slot(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    embedding = encoder.encode([PROMPT]).embeddings[0].tolist()
    by_vector = runner.route(RouteQuery(candidates=CANDIDATES, embedding=embedding), 5.0)
    assert runner.slot_runs == 0
    by_text = runner.route(QUERY, 5.0)
    assert [c.id for c in by_vector.ranked] == [c.id for c in by_text.ranked] == ["b", "a"]
    assert by_vector.prompt_tokens == 0  # no prompt was tokenized


def test_a_static_strategy_needs_no_encoder_and_no_slot(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    runs = encoder.runs
    decision = runner.route(replace(QUERY, strategy="cheapest"), 5.0)
    assert [c.id for c in decision.ranked] == ["b", "a"]  # gpt-4o-mini is cheaper
    assert runner.slot_runs == 0 and encoder.runs == runs
    assert runner.decider.front.stats.cache_misses == 0  # no lookup either


def test_kept_embeddings_are_encoded_even_for_a_static_strategy(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"], keep_embeddings=True)
    decision = runner.route(replace(QUERY, strategy="cheapest"), 5.0)
    assert runner.slot_runs == 1
    assert decision.embedding is not None and decision.embedding.shape == (encoder.dimension,)
    assert decision.prompt_tokens == 6


def test_errors_on_the_quick_path_are_the_same_errors(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    with pytest.raises(InvalidRequest, match="the loaded encoder produces 32"):
        runner.route(RouteQuery(candidates=CANDIDATES, embedding=[0.1, 0.2]), 5.0)
    with pytest.raises(InvalidRequest, match="unknown strategy 'nope'"):
        runner.route(replace(QUERY, strategy="nope"), 5.0)
    assert runner.slot_runs == 0 and runner.in_flight == 0


def test_nothing_loaded_is_not_ready(encoder):
    runner = make_runner(encoder, None)
    with pytest.raises(NotReady, match="no valid router bundle"):
        runner.route(QUERY, 5.0)


def test_a_debug_delay_always_takes_a_slot(encoder, bundles):
    # The delay holds calls in flight for drain/overload tests, like the encoder run it fakes.
    runner = make_runner(encoder, bundles["alpha"], decision_delay_s=0.001)
    runner.route(QUERY, 5.0)
    runner.route(QUERY, 5.0)
    embedding = encoder.encode([PROMPT]).embeddings[0].tolist()
    runner.route(RouteQuery(candidates=CANDIDATES, embedding=embedding), 5.0)
    assert runner.slot_runs == 3
    stats = runner.decider.front.stats
    assert (stats.cache_hits, stats.cache_misses) == (1, 1)  # counted in the slot, once each


def test_at_most_workers_decisions_run_at_once(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"], workers=2, decision_delay_s=0.2)
    running = peak = 0
    lock = threading.Lock()
    finish = Deferred.finish

    def counted(step: Deferred) -> Decision:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return finish(step)
        finally:
            with lock:
                running -= 1

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Deferred, "finish", counted)
        callers = [threading.Thread(target=runner.route, args=(QUERY, 10.0)) for _ in range(6)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
    assert peak == 2
    assert runner.slot_runs == 6 and runner.in_flight == 0


def test_admission_refuses_beyond_max_in_flight_and_releases_after(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"], max_in_flight=1, decision_delay_s=0.3)
    answers: list[Decision] = []
    slow = threading.Thread(target=lambda: answers.append(runner.route(QUERY, 5.0)))
    slow.start()
    wait_until(lambda: runner.in_flight == 1)
    assert sample(runner, "routeiq_in_flight_requests") == 1
    with pytest.raises(Overloaded, match=r"1 calls in flight \(limit 1\)"):
        runner.route(QUERY, 5.0)
    slow.join()
    assert answers and answers[0].ranked
    assert runner.in_flight == 0 and sample(runner, "routeiq_in_flight_requests") == 0
    runner.route(QUERY, 5.0)  # admitted again


def test_a_call_without_a_deadline_is_decided(encoder, bundles):
    # Sync grpc reports a call without a deadline as ~1e18 seconds left.
    runner = make_runner(encoder, bundles["alpha"])
    for remaining in (None, 1e18, float("inf")):
        assert runner.route(replace(QUERY, prompt=f"no deadline {remaining}"), remaining).ranked
    assert runner.slot_runs == 3


def test_calls_waiting_for_a_slot_count_as_in_flight(encoder, bundles):
    # The drain test and the dashboards read the gauge: a waiter is in flight too.
    runner = make_runner(encoder, bundles["alpha"], workers=1)
    assert runner.slots.enter()  # the only slot is busy
    waiter = threading.Thread(target=runner.route, args=(QUERY, 10.0))
    waiter.start()
    wait_until(lambda: runner.in_flight == 2)
    assert sample(runner, "routeiq_in_flight_requests") == 2
    runner.slots.leave()
    waiter.join()
    assert sample(runner, "routeiq_in_flight_requests") == 0


def test_too_little_time_left_is_refused_before_any_work(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    runs = encoder.runs
    with pytest.raises(DeadlineTooShort, match=r"less than the 1\.00 ms a decision needs"):
        runner.route(QUERY, 0.0005)
    assert runner.slot_runs == 0 and encoder.runs == runs


def test_a_call_waiting_past_its_deadline_is_answered_and_never_encoded(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"], workers=1)
    assert runner.slots.enter()  # the only slot is busy
    runs = encoder.runs
    try:
        with pytest.raises(DeadlineTooShort, match="no decision within the caller's deadline"):
            runner.route(QUERY, 0.05)
        assert runner.in_flight == 1  # only the holder
    finally:
        runner.slots.leave()
    assert runner.in_flight == 0 and sample(runner, "routeiq_in_flight_requests") == 0
    assert encoder.runs == runs  # it gave up waiting: nothing was encoded for it
    runner.route(QUERY, 5.0)  # the slot serves the next call


def test_a_deferred_decision_refuses_work_after_its_deadline(encoder, bundles):
    decider = Decider(VersionRegistry(encoder, bundles["alpha"]))
    step = decider.start(QUERY, deadline=0.0)  # monotonic 0: long gone
    assert isinstance(step, Deferred)
    with pytest.raises(DeadlineTooShort, match="waited for a decide slot"):
        step.finish()


def test_a_deferred_decision_finishes_on_the_version_it_started_with(encoder, bundles):
    registry = VersionRegistry(encoder, bundles["alpha"])
    decider = Decider(registry)
    step = decider.start(QUERY)
    assert isinstance(step, Deferred)
    registry.activate(bundles["beta"])
    assert step.finish().bundle_version == "alpha-1"
    assert decider.decide(QUERY).bundle_version == "beta-1"


def test_timings_count_the_work_and_the_embedding_part(encoder, bundles):
    decider = Decider(VersionRegistry(encoder, bundles["alpha"]))
    step = decider.start(QUERY)
    assert isinstance(step, Deferred)
    decision = step.finish()
    assert isinstance(decision, Decision)
    t = decision.timings
    assert t.total_ms >= t.embedding_ms > 0 and t.strategy_ms > 0
    assert t.total_ms == pytest.approx(t.embedding_ms + t.strategy_ms, abs=1e-6)


def test_metrics_count_latency_and_selections_by_outcome(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    for _ in range(3):
        decision = runner.route(QUERY, 5.0)
    top = decision.ranked[0].model_name
    assert top == "gpt-4o-mini"
    assert sample(runner, "routeiq_selections_total", model=top) == 3
    assert sample(runner, "routeiq_decision_latency_seconds_count", strategy="routeiq-alpha") == 3
    assert runner.decider.decisions_total == 3


OUTCOME = Outcome(
    decision_id="d-1",
    deployment_id="b",
    model_name="gpt-4o-mini",
    status="success",
    input_tokens=10,
    output_tokens=20,
    latency_ms=350.0,
    cost_usd=None,
    fallback=False,
    fallback_reason="",
    error_type="",
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decision_id": ""}, "send RouteResponse.decision_id"),
        ({"status": "great"}, "must be one of"),
        ({"input_tokens": -1}, "token counts must be >= 0"),
        ({"latency_ms": float("nan")}, "latency_ms must be finite"),
    ],
)
def test_invalid_outcomes_name_what_to_fix(encoder, bundles, change, message):
    runner = make_runner(encoder, bundles["alpha"])
    with pytest.raises(InvalidRequest, match=message):
        runner.record_outcome(replace(OUTCOME, **change))
    assert sample(runner, "routeiq_outcomes_total", status="success") == 0


def test_outcomes_are_counted_by_status(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    runner.record_outcome(OUTCOME)
    runner.record_outcome(replace(OUTCOME, status="fallback", fallback=True))
    assert sample(runner, "routeiq_outcomes_total", status="success") == 1
    assert sample(runner, "routeiq_outcomes_total", status="fallback") == 1
