import math

import numpy as np
import pytest

from decision_service.domain import CandidateIn
from decision_service.manifest import CandidateModel
from decision_service.policy import ModelIndex, rank, selection_reason

MODELS = [
    CandidateModel(model_name="gpt-4o", provider="openai", cost_per_million_tokens=10.0),
    CandidateModel(model_name="gpt-4o-mini", provider="openai", cost_per_million_tokens=0.6),
    CandidateModel(
        model_name="claude-3-5-sonnet", provider="anthropic", cost_per_million_tokens=9.0
    ),
]
INDEX = ModelIndex(MODELS)
QUALITY = np.array([0.90, 0.80, 0.95], dtype=np.float32)


def cands(*names: str) -> list[CandidateIn]:
    return [CandidateIn(id=f"d{i}", model_name=n) for i, n in enumerate(names)]


def test_quality_only_ranks_by_predicted_quality():
    ranked = rank(cands("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"), QUALITY, INDEX, 0.0)
    assert [r.model_name for r in ranked] == ["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini"]
    assert [r.score for r in ranked] == pytest.approx([0.95, 0.90, 0.80])


def test_cost_weight_trades_quality_for_price_per_doubling():
    ranked = rank(cands("gpt-4o", "gpt-4o-mini"), QUALITY, INDEX, 0.05)
    # gpt-4o costs 10/0.6 = 16.7x more, ~4.06 doublings, so it pays ~0.203 of quality.
    assert [r.model_name for r in ranked] == ["gpt-4o-mini", "gpt-4o"]
    expected = 0.90 - 0.05 * math.log2(10.0 / 0.6)
    assert ranked[1].score == pytest.approx(expected, abs=1e-6)
    assert ranked[0].score == pytest.approx(0.80, abs=1e-6)


def test_request_cost_overrides_bundle_price():
    candidates = [
        CandidateIn("a", "gpt-4o", cost_per_million_tokens=0.5),
        CandidateIn("b", "gpt-4o-mini", cost_per_million_tokens=0.5),
    ]
    ranked = rank(candidates, QUALITY, INDEX, 0.5)
    assert ranked[0].id == "a"
    assert ranked[0].cost_per_million_tokens == 0.5


def test_only_named_candidates_are_ranked_and_unknown_go_last_in_request_order():
    candidates = cands("mystery-1", "gpt-4o-mini", "mystery-2", "gpt-4o")
    ranked = rank(candidates, QUALITY, INDEX, 0.0)
    assert [r.id for r in ranked] == ["d3", "d1", "d0", "d2"]
    assert [r.known_to_router for r in ranked] == [True, True, False, False]
    assert {r.id for r in ranked} == {c.id for c in candidates}


def test_provider_prefix_and_case_resolve_to_the_same_model():
    assert INDEX.column("openai/gpt-4o-mini") == 1
    assert INDEX.column("azure/GPT-4O") == 0
    assert INDEX.column("gpt-5") is None


def test_duplicate_models_under_different_ids_are_both_ranked():
    candidates = [CandidateIn("east", "gpt-4o"), CandidateIn("west", "gpt-4o")]
    ranked = rank(candidates, QUALITY, INDEX, 0.0)
    assert [r.id for r in ranked] == ["east", "west"]


def test_selection_reasons():
    assert selection_reason(rank(cands("gpt-4o"), QUALITY, INDEX, 0.0)) == "only_candidate"
    assert selection_reason(rank(cands("x", "y"), QUALITY, INDEX, 0.0)) == "no_known_candidates"
    assert selection_reason(rank(cands("gpt-4o", "y"), QUALITY, INDEX, 0.0)) == "highest_score"
