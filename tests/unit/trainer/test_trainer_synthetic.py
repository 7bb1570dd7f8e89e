"""The synthetic data set, the LLMRouter-format writer and the tolerant reader."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from trainer.data import RoutingDataError, read_candidates, read_routing_data, split_queries
from trainer.synthetic import KINDS, LLM_DATA_FILE, MODELS, ROUTING_FILE, generate, write_llmrouter


def test_generation_is_seeded_varied_and_distinct():
    a, b, c = generate(300, seed=3), generate(300, seed=3), generate(300, seed=4)
    assert [p.query for p in a.prompts] == [p.query for p in b.prompts]
    np.testing.assert_array_equal(a.labels, b.labels)
    assert [p.query for p in a.prompts] != [p.query for p in c.prompts]
    queries = [p.query for p in a.prompts]
    assert len({" ".join(q.lower().split()) for q in queries}) == len(queries)
    assert set(Counter(p.kind for p in a.prompts)) == set(KINDS)
    lengths = [len(q) for q in queries]
    assert min(lengths) < 40 and max(lengths) > 300
    assert set(np.unique(a.labels)) <= {0.0, 1.0}


def test_labels_have_routing_structure():
    data = generate(1800, seed=5)
    names = [m.name for m in data.models]
    kinds = np.array([p.kind for p in data.prompts])
    by_kind = {k: data.labels[kinds == k].mean(axis=0) for k in KINDS}
    # No single model is best at every kind: specialists win their kinds.
    best = {k: names[int(np.argmax(v))] for k, v in by_kind.items()}
    assert len(set(best.values())) >= 2
    assert best["code"] == "claude-3-5-sonnet" and best["math"] == "qwen2.5-math-72b"
    # The cheap model is good enough on easy kinds for a cost-aware router to save money...
    mini = names.index("gpt-4o-mini")
    assert by_kind["chit-chat"][mini] > 0.9
    # ...and clearly worse on hard prompts.
    hard = np.array([p.difficulty > 0.6 for p in data.prompts])
    assert data.labels[hard, mini].mean() < data.labels[hard, names.index("gpt-4o")].mean() - 0.2


def test_written_data_reads_back_exactly(tmp_path: Path):
    data = generate(120, seed=1)
    write_llmrouter(data, tmp_path / "data")
    lines = (tmp_path / "data" / ROUTING_FILE).read_text().splitlines()
    assert len(lines) == 120 * len(MODELS)
    record = json.loads(lines[0])
    assert {"query", "model_name", "performance", "cost"} <= record.keys()
    read = read_routing_data(tmp_path / "data")
    assert read.report.records_skipped == 0 and read.report.queries_dropped_incomplete == 0
    assert read.prompts == [p.query for p in data.prompts]
    np.testing.assert_array_equal(read.labels, data.labels)
    assert [c.model_name for c in read.candidates] == [m.name for m in MODELS]
    assert [c.cost_per_million_tokens for c in read.candidates] == [
        m.price_per_million for m in MODELS
    ]
    assert read.kinds == [p.kind for p in data.prompts]
    # Per-call cost follows price: gpt-4o costs 10/0.6 times gpt-4o-mini on every prompt.
    np.testing.assert_allclose(read.costs[:, 0] / read.costs[:, 1], 10.0 / 0.6, rtol=1e-3)


def _write(directory: Path, records: list[object], llm: Mapping[str, object]) -> Path:
    directory.mkdir()
    (directory / LLM_DATA_FILE).write_text(json.dumps(llm))
    with (directory / ROUTING_FILE).open("w") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return directory


LLM = {
    "big": {"provider": "openai", "cost_per_million_tokens": 10.0},
    "small": {"service": "mistral", "input_price": 0.5, "output_price": 1.5},
}


def _rec(query: str, model: str, performance: object = 1.0, cost: object = 0.01) -> dict:
    return {"query": query, "model_name": model, "performance": performance, "cost": cost}


def test_reader_skips_bad_records_with_counts_and_never_invents(tmp_path: Path):
    records: list[object] = [
        _rec("q1", "big", 1.0),
        _rec("q1", "small", 0.0),
        _rec("q2", "big", 0.5),
        _rec("q2", "small", 1.0),
        _rec("q2", "small", 0.0),  # duplicate (query, model): the first wins
        {"query": "q3", "model_name": "big", "cost": 0.1},  # no performance
        _rec("q3", "small"),  # q3 is now incomplete: dropped, not filled in
        {"query": "q4", "model_name": "big", "performance": 1.0},  # no cost
        _rec("q4", "gpt-9", 1.0),  # not in llm_data.json
        _rec("q4", "big", 1.5),  # out of range
        _rec("q4", "small", True),  # a bool is not a score
        _rec("q4", "small", None),
        _rec("", "small"),
        _rec("q4", "small", 1.0, -1),
        "{not json",
        "[1, 2]",
        "",
    ]
    read = read_routing_data(_write(tmp_path / "d", records, LLM))
    report = read.report
    assert report.records_total == 16  # the blank line is not a record
    assert dict(report.skipped) == {
        "duplicate_query_model": 1,
        "missing_performance": 2,
        "missing_cost": 1,
        "unknown_model": 1,
        "invalid_performance": 2,
        "invalid_query": 1,
        "invalid_cost": 1,
        "invalid_json": 1,
        "not_an_object": 1,
    }
    assert report.queries_dropped_incomplete == 1  # q3 (q4 has no valid record at all)
    assert report.records_used == 4
    assert read.prompts == ["q1", "q2"]
    np.testing.assert_array_equal(read.labels, [[1.0, 0.0], [0.5, 1.0]])
    assert [(c.model_name, c.provider, c.cost_per_million_tokens) for c in read.candidates] == [
        ("big", "openai", 10.0),
        ("small", "mistral", 1.0),
    ]
    assert read.kinds == [None, None]


def test_reader_refuses_unusable_inputs(tmp_path: Path):
    with pytest.raises(RoutingDataError, match="missing"):
        read_routing_data(tmp_path)
    only_bad = _write(tmp_path / "bad", [_rec("q", "big")], LLM)
    with pytest.raises(RoutingDataError, match="no query with a record for each"):
        read_routing_data(only_bad)
    (tmp_path / "llm.json").write_text(json.dumps({"m": {"provider": "x"}}))
    with pytest.raises(RoutingDataError, match="no usable price"):
        read_candidates(tmp_path / "llm.json")


def test_split_is_reproducible_and_disjoint():
    a, b = split_queries(100, seed=3), split_queries(100, seed=3)
    np.testing.assert_array_equal(a.test, b.test)
    assert len(a.test) == 20 and len(a.train) == 80
    assert set(a.train).isdisjoint(a.test) and set(a.train) | set(a.test) == set(range(100))
    assert not np.array_equal(split_queries(100, seed=4).test, a.test)
