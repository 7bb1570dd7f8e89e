"""Judge verdicts (MT Bench, Chatbot Arena) as routing labels.

``--data`` is one ``.jsonl`` file or a directory whose ``*.jsonl`` are all read (except
``question.jsonl``, ``contaminated_prompts.jsonl`` and ``routing_data.jsonl``). One JSON
object per line, every line of the data set of one of two shapes:

* **pairwise**: ``model_a``, ``model_b`` and ``winner``, one of ``"model_a"``,
  ``"model_b"``, ``"tie"``, ``"tie (bothbad)"`` (MT Bench human judgements, Chatbot Arena
  battles). FastChat's ``gpt-4_pair.jsonl`` spelling (``model_1``, ``model_2``,
  ``g1_winner``, ``g2_winner`` in ``"model_1"``, ``"model_2"``, ``"tie"``, ``"error"``)
  counts as two verdicts, one per answer order.
* **single-answer grading**: ``model`` and ``score`` on MT Bench's 1-10 scale (FastChat's
  ``gpt-4_single.jsonl``, RouteLLM's ``mt_bench/judgements.jsonl``).

The prompt is ``prompt`` or ``question`` (a string), else ``turns[0]``, else the first
user message of ``conversation_a``, else the first turn of the line's ``question_id`` in
``question.jsonl`` beside the data (FastChat's ``{"question_id", "category", "turns"}``;
``category`` becomes the row's kind). A question is one routing example keyed by its first
turn, as RouteLLM's MT Bench evaluation routes on the first turn only; verdicts on later
turns count towards the same question. Questions with any turn listed in
``contaminated_prompts.jsonl`` are excluded, as RouteLLM excludes them.

Labelling rule (the text docs/quality.md quotes):

    Single-answer grades: a model's label on a prompt is the mean of its scores there,
    divided by 10. Scaling every label leaves PGR, APGR and CPT as they are on raw MT
    Bench scores. A score of -1 (FastChat: the judge gave no rating) is skipped.
    Pairwise verdicts: each verdict labels both models: the winner 1 and the loser 0;
    "tie" 1 for both; "tie (bothbad)" 0 for both. A model's label on a prompt is the mean
    over that prompt's verdicts (all judges, turns and answer orders). The strong model's
    advantage (its label minus the weak model's) is therefore positive only where it won
    more verdicts than it lost: a tie of either kind leaves the advantage at 0, so the
    weak model suffices, RouteLLM's convention for MT Bench and Chatbot Arena (weak wins
    or tie: the weak model is enough). A model's single-model quality is the share of
    verdicts it won or tied as good.

Candidates: the models ``llm_data.json`` beside the data describes (with prices), else
every model the verdicts name (priced from ``routellm_csv.KNOWN_PRICES``, else an error).
Pairwise verdicts label a pair, so a pairwise data set has exactly two candidates; a
verdict between other models is skipped (``other_models``). Single-answer grades allow any
number; a prompt not graded for every candidate is dropped (``queries_dropped_incomplete``).
Costs are nominal, as for RouteLLM's CSVs (``NOMINAL_TOKENS`` at each model's price).

A line that is not JSON, has neither shape, carries an unknown ``winner`` or a score off
the scale, or whose prompt cannot be found raises ``RoutingDataError`` naming the file, the
line and the fix: dropping such lines would silently bias the win rates, unlike a judge
failure (``"error"``, score -1), which is skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.data import ReadReport, RoutingData, RoutingDataError
from trainer.sources.routellm_csv import (
    CONTAMINATED_FILE,
    described_models,
    nominal_costs,
    priced_candidates,
    read_contaminated,
)
from trainer.synthetic import LLM_DATA_FILE, ROUTING_FILE

QUESTION_FILE = "question.jsonl"
NOT_JUDGEMENTS = frozenset({QUESTION_FILE, CONTAMINATED_FILE, ROUTING_FILE})
PAIRWISE, SINGLE = "pairwise", "single-answer"
# (label of model_a, label of model_b) per verdict; see the labelling rule above.
WINNER_LABELS = {"model_a": (1.0, 0.0), "model_b": (0.0, 1.0), "tie": (1.0, 1.0)}
WINNER_LABELS["tie (bothbad)"] = (0.0, 0.0)
FASTCHAT_LABELS = {"model_1": (1.0, 0.0), "model_2": (0.0, 1.0), "tie": (1.0, 1.0)}
JUDGE_FAILED = ("error", -1)  # FastChat's markers for a judge output with no verdict
SCORE_RANGE = (1.0, 10.0)
JUDGEMENT_FIXES = {
    "judge_failed": "the judge gave no verdict (FastChat 'error' / score -1); re-judge it",
    "same_model": "a verdict needs two different models",
    "missing_prompt": "give the line a non-empty prompt",
    "contaminated": f"the question is listed in {CONTAMINATED_FILE}; nothing to fix",
    "other_models": f"the line judges models that are not the candidates; list the models "
    f"to route between in {LLM_DATA_FILE}",
}


class _LineError(ValueError):
    """What is wrong with one line and how to fix it; read_judgements adds file and line."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.fix = fix


PROMPT_FIX = f"give the line a 'prompt', or a 'question_id' with {QUESTION_FILE} beside it"
SHAPES_FIX = (
    'write {"prompt": ..., "model_a": ..., "model_b": ..., "winner": "model_a"} or '
    '{"prompt": ..., "model": ..., "score": 7}'
)


@dataclass(frozen=True)
class _Verdicts:
    shape: str
    prompt: str
    turns: tuple[str, ...]
    kind: str | None
    votes: tuple[dict[str, float], ...]  # each vote: {model: label}


def _questions(directory: Path) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """question_id -> (turns, category) from FastChat's question.jsonl, when present."""
    path = directory / QUESTION_FILE
    if not path.is_file():
        return {}
    questions = {}
    for number, record in _lines(path):
        turns = record.get("turns")
        if "question_id" not in record or not isinstance(turns, list) or not turns:
            raise RoutingDataError(
                "a question needs 'question_id' and a non-empty 'turns' list",
                path=path,
                line=number,
                fix='write {"question_id": 81, "category": "writing", "turns": ["..."]}',
            )
        category = record.get("category")
        questions[str(record["question_id"])] = (
            tuple(str(t) for t in turns),
            category if isinstance(category, str) else None,
        )
    return questions


def _lines(path: Path) -> list[tuple[int, dict[str, object]]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RoutingDataError(
                f"not JSON ({exc.msg} at column {exc.colno})",
                path=path,
                line=number,
                fix="write one JSON object per line",
            ) from exc
        if not isinstance(record, dict):
            raise RoutingDataError(
                f"a JSON {type(record).__name__}, not an object",
                path=path,
                line=number,
                fix="write one JSON object per line",
            )
        out.append((number, record))
    return out


def _prompt(
    record: Mapping[str, object], questions: Mapping[str, tuple[tuple[str, ...], str | None]]
) -> tuple[tuple[str, ...], str | None]:
    """(turns, category): turns[0] is the prompt routed on."""
    category = record.get("category")
    kind = category if isinstance(category, str) else None
    for key in ("prompt", "question"):
        if isinstance(record.get(key), str):
            return (str(record[key]),), kind
    turns = record.get("turns")
    if isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns):
        return tuple(turns), kind
    conversation = record.get("conversation_a")
    if isinstance(conversation, list):
        for message in conversation:
            if isinstance(message, dict) and message.get("role") == "user":
                return (str(message.get("content", "")),), kind
    if "question_id" in record and str(record["question_id"]) in questions:
        turns_, category_ = questions[str(record["question_id"])]
        return turns_, kind or category_
    problem = "no prompt ('prompt', 'question', 'turns' or 'conversation_a')"
    if "question_id" in record:
        problem = f"question_id {record['question_id']!r} is not in {QUESTION_FILE}"
        if not questions:
            problem = f"question_id {record['question_id']!r} but no {QUESTION_FILE} beside it"
    raise _LineError(problem, PROMPT_FIX)


def _votes(record: Mapping[str, object]) -> tuple[str, tuple[dict[str, float], ...]]:
    """(shape, votes); no votes means the judge failed on every answer order."""
    if "model_a" in record or "winner" in record:
        a, b, winner = record.get("model_a"), record.get("model_b"), record.get("winner")
        if not (isinstance(a, str) and a and isinstance(b, str) and b):
            raise _LineError(
                "a pairwise verdict needs 'model_a' and 'model_b' names",
                "name the two models compared in 'model_a' and 'model_b'",
            )
        if winner not in WINNER_LABELS:
            allowed = ", ".join(repr(w) for w in WINNER_LABELS)
            raise _LineError(f"unknown winner {winner!r}", f"use one of {allowed}")
        la, lb = WINNER_LABELS[str(winner)]
        return PAIRWISE, ({a: la, b: lb},)
    if "model_1" in record:
        a, b = record.get("model_1"), record.get("model_2")
        if not (isinstance(a, str) and a and isinstance(b, str) and b):
            raise _LineError(
                "a FastChat pair verdict needs 'model_1' and 'model_2' names",
                "name the two models compared in 'model_1' and 'model_2'",
            )
        votes = []
        for key in ("g1_winner", "g2_winner"):
            winner = record.get(key)
            if winner in FASTCHAT_LABELS:
                la, lb = FASTCHAT_LABELS[str(winner)]
                votes.append({a: la, b: lb})
            elif winner not in JUDGE_FAILED:
                allowed = ", ".join(repr(w) for w in [*FASTCHAT_LABELS, "error"])
                raise _LineError(f"unknown {key} {winner!r}", f"use one of {allowed}")
        return PAIRWISE, tuple(votes)
    if "model" in record or "score" in record:
        model, score = record.get("model"), record.get("score")
        if not isinstance(model, str) or not model:
            raise _LineError(
                "a single-answer grade needs a 'model' name", "name the graded model in 'model'"
            )
        if score is None:
            raise _LineError(
                "a single-answer grade needs a 'score'", "give the judge's 1-10 'score'"
            )
        if score in JUDGE_FAILED and not isinstance(score, bool):
            return SINGLE, ()
        low, high = SCORE_RANGE
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
            or not low <= score <= high
        ):
            raise _LineError(
                f"score {score!r} is not on MT Bench's {low:g}-{high:g} scale",
                f"give a number from {low:g} to {high:g} (-1 when the judge gave no rating)",
            )
        return SINGLE, ({model: float(score) / high},)
    raise _LineError(
        "neither a pairwise verdict (model_a, model_b, winner) nor a single-answer grade "
        "(model, score)",
        SHAPES_FIX,
    )


def _parse(
    record: Mapping[str, object],
    questions: Mapping[str, tuple[tuple[str, ...], str | None]],
    contaminated: set[str],
) -> _Verdicts | str:
    shape, votes = _votes(record)
    if not votes:
        return "judge_failed"
    if shape == PAIRWISE and len(votes[0]) < 2:
        return "same_model"
    turns, kind = _prompt(record, questions)
    if not turns[0].strip():
        return "missing_prompt"
    if any(t in contaminated for t in turns):
        return "contaminated"
    return _Verdicts(shape, turns[0], turns, kind, votes)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = [p for p in sorted(path.glob("*.jsonl")) if p.name not in NOT_JUDGEMENTS]
    if not files:
        raise RoutingDataError(f"{path} holds no judgement *.jsonl files")
    return files


def read_judgements(path: Path, *, exclude_contaminated: bool = True) -> RoutingData:
    path = Path(path)
    directory = path.parent if path.is_file() else path
    files = _files(path)
    questions = _questions(directory)
    contaminated = read_contaminated(directory) if exclude_contaminated else set()
    report = ReadReport()
    digest = hashlib.sha256()
    if (directory / QUESTION_FILE).is_file():
        digest.update(QUESTION_FILE.encode() + b"\0" + (directory / QUESTION_FILE).read_bytes())
    parsed: list[tuple[Path, int, _Verdicts]] = []
    first: tuple[Path, int, str] | None = None  # where the data set's shape was set
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
        for number, record in _lines(file):
            report.records_total += 1
            try:
                verdicts = _parse(record, questions, contaminated)
            except _LineError as exc:
                raise RoutingDataError(str(exc), path=file, line=number, fix=exc.fix) from exc
            if isinstance(verdicts, str):
                report.skip(verdicts, file, number)
                continue
            if first is None:
                first = (file, number, verdicts.shape)
            elif verdicts.shape != first[2]:
                raise RoutingDataError(
                    f"a {verdicts.shape} line in a data set that began {first[2]} "
                    f"({first[0].name}, line {first[1]})",
                    path=file,
                    line=number,
                    fix="keep pairwise verdicts and single-answer grades in separate data sets",
                )
            parsed.append((file, number, verdicts))
    if first is None:
        raise RoutingDataError(
            f"no usable judgements ({report.as_dict()})",
            path=path,
            fix=report.first_rejection(JUDGEMENT_FIXES),
        )
    names = _candidate_names(directory, files[0], first[2], parsed)
    return _assemble(path, directory, names, parsed, report, digest.hexdigest())


def _candidate_names(
    directory: Path, file: Path, shape: str, parsed: list[tuple[Path, int, _Verdicts]]
) -> list[str]:
    described = described_models(directory)
    if described:
        names = list(described)
        if shape == PAIRWISE and len(names) != 2:
            raise RoutingDataError(
                f"pairwise verdicts label a pair of models, but it describes {len(names)}",
                path=directory / LLM_DATA_FILE,
                fix="describe exactly the two models to route between",
            )
        return names
    seen = list(dict.fromkeys(m for _, _, v in parsed for vote in v.votes for m in vote))
    if len(seen) < 2 or (shape == PAIRWISE and len(seen) > 2):
        raise RoutingDataError(
            f"the {shape} judgements name {len(seen)} models {seen[:8]}; routing needs "
            + ("exactly two" if shape == PAIRWISE else "at least two"),
            path=file,
            fix=f"describe the models to route between, with prices, in "
            f"{directory / LLM_DATA_FILE}; lines judging other models are then skipped",
        )
    return seen


def _assemble(
    path: Path,
    directory: Path,
    names: list[str],
    parsed: list[tuple[Path, int, _Verdicts]],
    report: ReadReport,
    sha256: str,
) -> RoutingData:
    column = {name: j for j, name in enumerate(names)}
    sums: dict[str, np.ndarray] = {}  # prompt -> [2, m]: label sums, vote counts
    lines_per_prompt: dict[str, int] = {}
    kinds: dict[str, str | None] = {}
    for file, number, verdicts in parsed:
        if any(m not in column for vote in verdicts.votes for m in vote):
            report.skip("other_models", file, number)
            continue
        acc = sums.setdefault(verdicts.prompt, np.zeros((2, len(names))))
        for vote in verdicts.votes:
            for model, label in vote.items():
                acc[:, column[model]] += (label, 1.0)
        lines_per_prompt[verdicts.prompt] = lines_per_prompt.get(verdicts.prompt, 0) + 1
        kinds.setdefault(verdicts.prompt, verdicts.kind)
        report.records_used += 1
    prompts = [p for p, acc in sums.items() if acc[1].all()]
    for p, acc in sums.items():
        if not acc[1].all():
            report.queries_dropped_incomplete += 1
            report.records_used -= lines_per_prompt[p]
    if not prompts:
        if sums:
            prompt, acc = next(iter(sums.items()))
            missing = [n for n, count in zip(names, acc[1], strict=True) if not count]
            fix = f"prompt {prompt[:60]!r} has no grade for {missing}: grade every candidate"
        else:
            fix = report.first_rejection(JUDGEMENT_FIXES)
        raise RoutingDataError(
            f"no prompt judged for every candidate {names} ({report.as_dict()})",
            path=path,
            fix=fix,
        )
    labels = np.array([sums[p][0] / sums[p][1] for p in prompts], dtype=np.float32)
    candidates = priced_candidates(directory, names)
    return RoutingData(
        prompts=prompts,
        labels=labels,
        costs=nominal_costs(candidates, len(prompts)),
        candidates=candidates,
        kinds=[kinds[p] for p in prompts],
        sha256=sha256,
        report=report,
    )
