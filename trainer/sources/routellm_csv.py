"""RouteLLM's wide CSV format: one ``prompt`` column, one correctness column per model.

As in RouteLLM's ``mmlu_*.csv`` files (``prompt,<model a>,<model b>``; cells ``True`` /
``False``, or numbers in [0, 1]). Every ``*.csv`` in a directory is read, in name order;
all files must name the same models. The file's stem minus a leading ``mmlu_`` is the
row's ``kind`` (the MMLU subject).

Nothing is filled in: a row with an empty prompt, a missing or unparsable label, or a
prompt already seen (duplicates would leak across the split) is skipped and counted by
reason. Prompts listed in ``contaminated_prompts.jsonl`` (``{"eval_prompt": ...}`` lines,
RouteLLM's list of MMLU prompts that overlap its router training data) are excluded by
default, as RouteLLM's own MMLU evaluation excludes them.

The CSVs carry no prices. They come from ``llm_data.json`` in the same directory when
present, else from ``KNOWN_PRICES`` (the per-million-token prices RouteLLM uses for its
cost figures); a model with neither is an error, never a guessed price. Each call is
costed as ``NOMINAL_TOKENS`` tokens at that price (the CSVs have no token counts), so
dollar columns compare policies, not bills.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np

from decision_service.manifest import CandidateModel
from trainer.data import ReadReport, RoutingData, RoutingDataError, read_candidates
from trainer.synthetic import LLM_DATA_FILE

CONTAMINATED_FILE = "contaminated_prompts.jsonl"
NOMINAL_TOKENS = 1000
# RouteLLM (arXiv:2406.18665, section 5.1): GPT-4 at $24.7 and Mixtral 8x7B at $0.24 per
# million tokens (input/output blend).
KNOWN_PRICES: dict[str, tuple[str, float]] = {
    "gpt-4-1106-preview": ("openai", 24.7),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ("together_ai", 0.24),
}
_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


def _label(cell: str | None) -> float | None:
    if cell is None:
        return None
    text = cell.strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def read_contaminated(directory: Path) -> set[str]:
    path = Path(directory) / CONTAMINATED_FILE
    if not path.is_file():
        return set()
    prompts = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("eval_prompt"), str):
                prompts.add(record["eval_prompt"])
    return prompts


def _candidates(directory: Path, models: list[str]) -> list[CandidateModel]:
    llm_path = directory / LLM_DATA_FILE
    described = {c.model_name: c for c in read_candidates(llm_path)} if llm_path.is_file() else {}
    candidates = []
    for name in models:
        if name in described:
            candidates.append(described[name])
        elif name in KNOWN_PRICES:
            provider, price = KNOWN_PRICES[name]
            candidates.append(
                CandidateModel(model_name=name, provider=provider, cost_per_million_tokens=price)
            )
        else:
            raise RoutingDataError(
                f"no price for model {name!r}: describe it in {llm_path} "
                "({name: {cost_per_million_tokens, provider}})"
            )
    return candidates


def read_routellm_csv(directory: Path, *, exclude_contaminated: bool = True) -> RoutingData:
    directory = Path(directory)
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise RoutingDataError(f"{directory} holds no *.csv files")
    contaminated = read_contaminated(directory) if exclude_contaminated else set()
    report = ReadReport()
    digest = hashlib.sha256()
    models: list[str] | None = None
    prompts: list[str] = []
    labels: list[list[float]] = []
    kinds: list[str | None] = []
    seen: set[str] = set()
    for path in files:
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw)
        kind = path.stem.removeprefix("mmlu_")
        reader = csv.reader(raw.decode("utf-8").splitlines(keepends=True))
        header = next(reader, None)
        if not header or header[0] != "prompt" or len(header) < 2:
            raise RoutingDataError(f"{path}: first row must be 'prompt,<model>,...'")
        if models is None:
            models = header[1:]
        elif header[1:] != models:
            raise RoutingDataError(f"{path}: models {header[1:]} differ from {models}")
        for row in reader:
            report.records_total += 1
            reason = _check_row(row, len(models), seen, contaminated)
            if isinstance(reason, str):
                report.skipped[reason] += 1
                continue
            prompt, values = reason
            seen.add(prompt)
            prompts.append(prompt)
            labels.append(values)
            kinds.append(kind)
            report.records_used += 1
    assert models is not None
    if not prompts:
        raise RoutingDataError(f"{directory}: no usable rows ({report.as_dict()})")
    candidates = _candidates(directory, models)
    label_matrix = np.asarray(labels, dtype=np.float32)
    prices = np.array([c.cost_per_million_tokens for c in candidates], np.float64)
    costs = np.tile(prices * NOMINAL_TOKENS / 1e6, (len(prompts), 1))
    return RoutingData(
        prompts=prompts,
        labels=label_matrix,
        costs=costs,
        candidates=candidates,
        kinds=kinds,
        sha256=digest.hexdigest(),
        report=report,
    )


def _check_row(
    row: list[str], m: int, seen: set[str], contaminated: set[str]
) -> str | tuple[str, list[float]]:
    if len(row) != m + 1:
        return "wrong_column_count"
    prompt = row[0]
    if not prompt.strip():
        return "missing_prompt"
    values = [_label(cell) for cell in row[1:]]
    if any(v is None for v in values):
        return "missing_or_invalid_label"
    if prompt in contaminated:
        return "contaminated"
    if prompt in seen:
        return "duplicate_prompt"
    return prompt, [float(v) for v in values if v is not None]


def kind_counts(data: RoutingData) -> dict[str, int]:
    return dict(sorted(Counter(k for k in data.kinds if k is not None).items()))
