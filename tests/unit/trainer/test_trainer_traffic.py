"""Training from traffic: decisions joined with outcomes and feedback, and partial labels
(only the served model observed) trained with masks and inverse propensity weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from decision_service.manifest import CandidateModel
from trainer.learn import fit_partial, partial_labels
from trainer.sources.traffic import TrafficJoin

CANDIDATES = [
    CandidateModel(model_name="cheap", provider="p", cost_per_million_tokens=0.1),
    CandidateModel(model_name="strong", provider="p", cost_per_million_tokens=10.0),
]
DIM = 8


def point(kind: str, rng: np.random.Generator) -> np.ndarray:
    v = np.zeros(DIM)
    v[0 if kind == "math" else 1] = 1.0
    v += rng.normal(0, 0.15, DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def decision_line(i: int, model: str, propensity: float, emb: np.ndarray | None) -> dict:
    payload: dict[str, object] = {
        "contract_version": "v1",
        "event_id": f"d{i}",
        "selected_deployment": model,
    }
    if emb is not None:
        payload["query_embedding"] = [float(x) for x in emb]
    return {
        "name": "routeiq.router_decision.v1",
        "attributes": {
            "routeiq.router_decision.payload": json.dumps(payload),
            "routeiq.propensity": propensity,
        },
    }


def outcome_line(i: int, result: str, fallback: bool = False) -> dict:
    payload = {"decision_id": f"d{i}", "result": result, "status": "x", "fallback": fallback}
    return {
        "name": "routeiq.router_outcome.v1",
        "attributes": {"routeiq.router_outcome.payload": json.dumps(payload)},
    }


def feedback_line(decision_id: str, score: float, source: str) -> dict:
    payload = {"decision_id": decision_id, "score": score, "source": source}
    return {
        "name": "routeiq.router_feedback.v1",
        "attributes": {"routeiq.router_feedback.payload": json.dumps(payload)},
    }


def traffic(tmp_path: Path, n: int = 400) -> Path:
    """The old router serves 'cheap' (propensity 0.9) and explores 'strong' (0.1); cheap
    fails on math prompts, strong answers everything."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        kind = "math" if i % 2 else "chat"
        explored = i % 20 in (3, 4)  # both kinds explored
        model = "strong" if explored else "cheap"
        lines.append(decision_line(i, model, 0.1 if explored else 0.9, point(kind, rng)))
        ok = model == "strong" or kind == "chat"
        lines.append(outcome_line(i, "success" if ok else "provider_error"))
    # The edge cases the report must count.
    lines.append(decision_line(n, "cheap", 0.9, point("chat", rng)))  # never answered
    lines.append(decision_line(n + 1, "cheap", 0.9, point("chat", rng)))
    lines.append(outcome_line(n + 1, "success", fallback=True))
    lines.append(decision_line(n + 2, "cheap", 0.9, None))  # no embedding logged
    lines.append(outcome_line(n + 2, "success"))
    lines.append(feedback_line("nobody", 1.0, "user"))
    lines.append(feedback_line("d0", 0.25, "user"))  # d0: chat, cheap, success
    lines.append(feedback_line("d0", 0.75, "judge"))  # the judge wins over the user
    lines.append(decision_line(n + 3, "unknown-model", 1.0, point("chat", rng)))
    lines.append(outcome_line(n + 3, "success"))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
    return path


def test_the_join_labels_each_decision_and_counts_what_it_dropped(tmp_path):
    join = TrafficJoin()
    join.add_events_file([traffic(tmp_path)])
    examples = join.join()
    report = join.report.as_dict()
    assert report["decisions"] == 404 and report["joined"] == 403
    assert report["labelled"] == 401
    assert report["dropped"] == {
        "no_features": 1,
        "no_outcome_or_feedback": 1,
        "served_by_fallback": 1,
    }
    assert report["orphans"] == {"feedback_without_decision": 1, "outcome_without_decision": 0}
    assert report["label_sources"] == {"judge": 1, "outcome": 400}
    assert report["unreadable"] == {"line_invalid": 1}
    by_id = {e.decision_id: e for e in examples}
    assert (by_id["d0"].label, by_id["d0"].label_source) == (0.75, "judge")
    assert by_id["d1"].label == 0.0  # cheap on math: a provider error
    assert by_id["d4"].propensity == pytest.approx(0.1) and by_id["d4"].model_name == "strong"

    data = partial_labels(examples, CANDIDATES)
    assert data.dropped == {"model_not_in_bundle": 1}
    # One observed cell per row, weighted by 1/propensity; the unobserved cell weighs 0.
    assert ((data.weights > 0).sum(axis=1) == 1).all()
    assert sorted(set(np.round(data.weights[data.weights > 0], 4))) == [1.1111, 10.0]
    assert list(data.observed) == [360, 40]


@pytest.mark.parametrize("router_type", ["mlp", "mf", "knn"])
def test_partial_labels_teach_the_router_what_only_exploration_observed(tmp_path, router_type):
    join = TrafficJoin()
    join.add_events_file([traffic(tmp_path)])
    data = partial_labels(join.join(), CANDIDATES)
    params = {"epochs": 150} if router_type in ("mlp", "mf") else {"k": 10}
    exported = fit_partial(data, router_type, seed=0, **params)
    rng = np.random.default_rng(1)
    math = exported.predict(np.stack([point("math", rng) for _ in range(50)]))
    chat = exported.predict(np.stack([point("chat", rng) for _ in range(50)]))
    cheap, strong = 0, 1
    # Strong was served on 10% of traffic only, always successfully: read as observed it is
    # a good model everywhere; read as 0 where unobserved (no mask) it would look bad.
    assert math[:, strong].mean() > 0.7 and chat[:, strong].mean() > 0.7
    assert math[:, cheap].mean() < 0.3 < 0.7 < chat[:, cheap].mean()


def test_svm_and_empty_traffic_are_refused():
    data = partial_labels([], CANDIDATES)
    with pytest.raises(ValueError, match="needs a label for every model"):
        fit_partial(data, "svm")
    with pytest.raises(ValueError, match="fewer than 2"):
        fit_partial(data, "mlp")


def test_feedback_read_from_two_sources_counts_once(tmp_path):
    """The events file and the traces of one service hold the same feedback; a window that
    overlaps another must not weigh the overlap twice. Feedback sent twice counts twice."""
    rng = np.random.default_rng(2)
    decision = decision_line(0, "cheap", 1.0, point("chat", rng))
    sent = [feedback_line("d0", s, "user") for s in (1.0, 0.0, 0.0)]  # 0.0 sent twice
    everything = tmp_path / "events.jsonl"
    everything.write_text("".join(json.dumps(line) + "\n" for line in [decision, *sent]))
    overlap = tmp_path / "overlap.jsonl"  # another source's window: the first feedback only
    overlap.write_text(json.dumps(sent[0]) + "\n" + json.dumps(feedback_line("x", 1.0, "user")))

    for paths in ([everything], [everything, everything], [everything, overlap]):
        join = TrafficJoin()
        join.add_events_file(paths)
        (example,) = join.join()
        assert example.label == pytest.approx(1 / 3), paths
        assert join.report.as_dict()["label_sources"] == {"user": 1}
    assert join.report.orphans["feedback_without_decision"] == 1
