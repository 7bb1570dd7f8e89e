"""Judge verdicts (MT Bench, Chatbot Arena) as labels, format detection, unusable files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from trainer.errors import RoutingDataError
from trainer.sources.formats import dataset_name, detect_format, read_data
from trainer.sources.judgements import read_judgements

GPT4, MIXTRAL = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"


def _jsonl(path: Path, records: Sequence[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def _battle(prompt: str, winner: str, a: str = MIXTRAL, b: str = GPT4) -> dict[str, object]:
    """A Chatbot Arena battle: the prompt is the first user turn of conversation_a."""
    return {
        "question_id": f"q-{prompt}",
        "model_a": a,
        "model_b": b,
        "winner": winner,
        "judge": "arena_user_1",
        "conversation_a": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": "..."},
        ],
        "turn": 1,
    }


def test_pairwise_verdicts_follow_the_documented_rule(tmp_path: Path):
    path = _jsonl(
        tmp_path / "arena" / "battles.jsonl",
        [
            _battle("hard proof", "model_b"),  # strong wins: strong 1, weak 0
            _battle("greeting", "model_a"),  # weak wins: weak 1, strong 0
            _battle("capital of France", "tie"),  # both good: both 1
            _battle("riddle", "tie (bothbad)"),  # both bad: both 0
            # Two judges disagree on one prompt, models in the other order: labels average.
            _battle("poem", "model_a", a=GPT4, b=MIXTRAL),
            {**_battle("poem", "tie", a=GPT4, b=MIXTRAL), "judge": "arena_user_2"},
            _battle("same", "tie", a=GPT4, b=GPT4),
            _battle("", "model_a"),
        ],
    )
    data, data_format = read_data(path.parent)
    assert data_format == "judgements"
    assert data.prompts == ["hard proof", "greeting", "capital of France", "riddle", "poem"]
    assert [c.model_name for c in data.candidates] == [MIXTRAL, GPT4]  # first seen
    np.testing.assert_array_equal(
        data.labels, [[0, 1], [1, 0], [1, 1], [0, 0], [0.5, 1]]
    )  # columns: weak (Mixtral), strong (GPT-4)
    advantage = data.labels[:, 1] - data.labels[:, 0]
    # The strong model is needed only where it won more verdicts than it lost.
    assert [p for p, a in zip(data.prompts, advantage, strict=True) if a > 0] == [
        "hard proof",
        "poem",
    ]
    assert data.report.records_total == 8 and data.report.records_used == 6
    assert dict(data.report.skipped) == {"same_model": 1, "missing_prompt": 1}
    assert data.costs[0].tolist() == pytest.approx([0.24e-3, 24.7e-3])
    assert data.benchmark is None


def test_fastchat_pairs_with_question_file_and_a_chosen_pair(tmp_path: Path):
    directory = tmp_path / "mt_bench"
    _jsonl(
        directory / "question.jsonl",
        [
            {"question_id": 81, "category": "writing", "turns": ["Write a blog post.", "Redo"]},
            {"question_id": 82, "category": "math", "turns": ["Solve x + 1 = 3.", "And 2x?"]},
        ],
    )
    pair = {"judge": ["gpt-4", "pair-v2"], "model_1": "vicuna-13b", "model_2": "gpt-3.5-turbo"}
    _jsonl(
        directory / "gpt-4_pair.jsonl",
        [
            {**pair, "question_id": 81, "g1_winner": "model_1", "g2_winner": "tie", "turn": 1},
            {**pair, "question_id": 81, "g1_winner": "error", "g2_winner": "model_1", "turn": 2},
            {**pair, "question_id": 82, "g1_winner": "error", "g2_winner": "error", "turn": 1},
            {
                **pair,
                "question_id": 82,
                "model_2": "llama-13b",
                "g1_winner": "model_1",
                "g2_winner": "model_1",
                "turn": 1,
            },
        ],
    )
    with pytest.raises(RoutingDataError, match="name 3 models") as caught:
        read_data(directory)
    assert "llm_data.json" in str(caught.value)  # the fix: choose the pair there
    (directory / "llm_data.json").write_text(
        json.dumps(
            {
                "gpt-3.5-turbo": {"provider": "openai", "cost_per_million_tokens": 1.0},
                "vicuna-13b": {"provider": "local", "cost_per_million_tokens": 0.1},
            }
        )
    )
    data = read_judgements(directory)
    assert data.prompts == ["Write a blog post."] and data.kinds == ["writing"]
    # Three votes on question 81 (g1 of turn 1, g2 of turn 1, g2 of turn 2).
    # vicuna (model_1) won two, tied one; gpt-3.5 only tied. Columns: llm_data.json order.
    np.testing.assert_allclose(data.labels, [[1 / 3, 1.0]])  # gpt-3.5, vicuna
    assert dict(data.report.skipped) == {"judge_failed": 1, "other_models": 1}


def test_single_answer_grades_as_routellm_mt_bench(tmp_path: Path):
    directory = tmp_path / "mt_bench"
    _jsonl(
        directory / "question.jsonl",
        [
            {"question_id": 81, "category": "writing", "turns": ["Write a blog post.", "Redo"]},
            {"question_id": 101, "category": "reasoning", "turns": ["Race: who is 2nd?", "Why"]},
            {"question_id": 117, "category": "math", "turns": ["|x + 5| < 10?", "And < 5?"]},
            {"question_id": 130, "category": "coding", "turns": ["Reverse a list.", "In C"]},
        ],
    )
    _jsonl(directory / "contaminated_prompts.jsonl", [{"eval_prompt": "And < 5?"}])

    def grade(qid: int, model: str, score: float, turn: int = 1) -> dict[str, object]:
        judge = ["gpt-4", "single-v1" if turn == 1 else "single-v1-multi-turn"]
        return {"question_id": qid, "model": model, "judge": judge, "score": score, "turn": turn}

    _jsonl(
        directory / "judgements.jsonl",
        [
            grade(81, GPT4, 9),
            grade(81, GPT4, 7, turn=2),
            grade(81, MIXTRAL, 6),
            grade(81, MIXTRAL, -1, turn=2),  # the judge gave no rating
            grade(101, GPT4, 10.0),
            grade(101, MIXTRAL, 3),
            grade(117, GPT4, 10),  # its second turn is contaminated
            grade(130, GPT4, 8),  # no Mixtral grade: dropped, not filled in
        ],
    )
    data, data_format = read_data(directory)
    assert data_format == "judgements"
    assert data.prompts == ["Write a blog post.", "Race: who is 2nd?"]
    assert data.kinds == ["writing", "reasoning"]
    assert [c.model_name for c in data.candidates] == [GPT4, MIXTRAL]
    np.testing.assert_allclose(data.labels, [[0.8, 0.6], [1.0, 0.3]])
    report = data.report
    assert dict(report.skipped) == {"judge_failed": 1, "contaminated": 1}
    assert report.queries_dropped_incomplete == 1
    assert (report.records_total, report.records_used) == (8, 5)
    assert read_judgements(directory).sha256 == data.sha256


@pytest.mark.parametrize(
    ("lines", "bad_line", "problem", "fix"),
    [
        (["{not json"], 1, "not JSON", "one JSON object per line"),
        ([{"prompt": "p", "model_a": "a", "model_b": "b", "winner": "A"}], 1, "unknown winner",
         "use one of 'model_a', 'model_b', 'tie', 'tie (bothbad)'"),
        ([{"prompt": "p", "model": "a", "score": 11}], 1, "not on MT Bench's 1-10 scale",
         "a number from 1 to 10"),
        (["", {"prompt": "p", "rating": 3}], 2, "neither a pairwise verdict", '"model_a"'),
        ([{"prompt": "p", "model": "a", "rating": 3}], 1, "needs a 'score'", "1-10 'score'"),
        ([{"question_id": 81, "model": "a", "score": 3}], 1, "no question.jsonl beside it",
         "give the line a 'prompt'"),
        ([{"prompt": "p", "model": "a", "score": 3},
          {"prompt": "p", "model_a": "a", "model_b": "b", "winner": "tie"}], 2,
         "a pairwise line in a data set that began single-answer", "separate data sets"),
        ([{"prompt": "p", "model": "a", "score": -1}], None, "no usable judgements",
         "line 1 (judge_failed)"),
    ],
)  # fmt: skip
def test_unusable_judgement_files_name_file_line_and_fix(
    tmp_path: Path, lines: list[object], bad_line: int | None, problem: str, fix: str
):
    path = _jsonl(tmp_path / "verdicts.jsonl", lines)
    with pytest.raises(RoutingDataError) as caught:
        read_judgements(path)
    error = caught.value
    assert (Path(str(error.path)), error.line) == (path, bad_line)
    assert problem in error.problem and fix in str(error.fix)
    where = str(path) if bad_line is None else f"{path}, line {bad_line}"
    assert str(error).startswith(f"{where}: ")


def test_format_detection_and_names(tmp_path: Path):
    csv_dir = tmp_path / "gsm8k"
    csv_dir.mkdir()
    (csv_dir / "gsm8k_responses.csv").write_text("prompt,a\n")
    _jsonl(csv_dir / "contaminated_prompts.jsonl", [{"eval_prompt": "x"}])
    assert detect_format(csv_dir) == "routellm-csv"
    assert detect_format(csv_dir / "gsm8k_responses.csv") == "routellm-csv"
    mt = tmp_path / "mt_bench"
    _jsonl(mt / "question.jsonl", [{"question_id": 1, "turns": ["q"]}])
    with pytest.raises(RoutingDataError, match=r"neither routing_data\.jsonl"):
        detect_format(mt)  # the questions alone hold no labels
    _jsonl(mt / "judgements.jsonl", [{"question_id": 1, "model": "a", "score": 3}])
    assert detect_format(mt) == detect_format(mt / "judgements.jsonl") == "judgements"
    _jsonl(mt / "routing_data.jsonl", [])
    assert detect_format(mt) == "llmrouter"  # the existing formats keep priority
    with pytest.raises(RoutingDataError, match="neither"):
        detect_format(mt / "question.jsonl")
    with pytest.raises(RoutingDataError, match="does not exist"):
        detect_format(tmp_path / "missing")
    assert dataset_name(csv_dir) == "gsm8k"
    assert dataset_name(csv_dir / "gsm8k_responses.csv") == "gsm8k_responses"
    assert dataset_name(csv_dir, "GSM8K (RouteLLM)") == "GSM8K (RouteLLM)"


def test_train_reads_judgements_through_the_cli(encoder_dir: Path, tmp_path: Path, capsys):
    from trainer.cli import main

    topics = ["a proof", "a poem", "a greeting", "a capital", "a riddle", "an essay"]
    battles = [
        _battle(f"Write {topic} number {i}.", "tie" if i % 3 == 0 else "model_b")
        for i in range(5)
        for topic in topics
    ]
    path = _jsonl(tmp_path / "arena" / "battles.jsonl", battles)
    out = tmp_path / "bundles"
    args = ["train", "--router", "knn", "--data", str(path), "--encoder", str(encoder_dir)]
    assert main([*args, "--out", str(out), "--k", "3", "--data-format", "judgements"]) == 0
    (manifest,) = out.glob("knn-*/manifest.json")
    training = json.loads(manifest.read_text())["training"]
    assert training["data"]["queries"] == 30
    assert training["data"]["read_report"]["records_used"] == 30
    assert str(manifest.parent) in capsys.readouterr().out
