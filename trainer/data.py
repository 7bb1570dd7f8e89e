"""Read LLMRouter-format routing data into a label matrix, and split it reproducibly.

The reader never invents a value: a record missing ``query``, ``model_name``,
``performance`` or ``cost`` (or holding a value of the wrong type or range, or naming a
model that ``llm_data.json`` does not describe) is skipped and counted by reason, and a
query left without a record for every candidate is dropped and counted, rather than
filled in. When nothing usable is left, the error names the file, the first rejected line
and what would fix it (``RoutingDataError``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from decision_service.manifest import CandidateModel
from trainer.errors import RoutingDataError
from trainer.synthetic import LLM_DATA_FILE, ROUTING_FILE

REQUIRED_FIELDS = ("query", "model_name", "performance", "cost")


# What to change in the file for each skip reason, for the "nothing usable" error.
SKIP_FIXES = {
    "invalid_json": "write one JSON object per line",
    "not_an_object": "write one JSON object per line",
    "missing_query": "give every record a 'query' string",
    "missing_model_name": "give every record a 'model_name'",
    "missing_performance": "give every record a 'performance' in [0, 1]",
    "missing_cost": "give every record a 'cost' in dollars",
    "invalid_query": "'query' must be a non-empty string",
    "unknown_model": f"name only models that {LLM_DATA_FILE} describes, or describe them there",
    "invalid_performance": "'performance' must be a number in [0, 1]",
    "invalid_cost": "'cost' must be a number >= 0",
    "duplicate_query_model": "keep one record per (query, model)",
}


@dataclass
class ReadReport:
    records_total: int = 0
    records_used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    queries_dropped_incomplete: int = 0
    # Input columns the reader did not use, with why (e.g. RouteLLM's `<model>_response`).
    ignored_columns: dict[str, str] = field(default_factory=dict)
    # Where each skip reason first occurred (file, 1-based line): for error messages only,
    # kept out of as_dict so manifests do not carry machine-specific paths.
    first_skip: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False)

    @property
    def records_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, path: Path | str, line: int) -> None:
        self.skipped[reason] += 1
        self.first_skip.setdefault(reason, (str(path), line))

    def first_rejection(self, fixes: dict[str, str]) -> str:
        """'first rejected: FILE, line N (reason): fix' for the earliest recorded skip."""
        if not self.first_skip:
            return "no record was rejected"
        reason, (path, line) = min(self.first_skip.items(), key=lambda kv: kv[1])
        fix = fixes.get(reason, "see the reader's documentation for this reason")
        return f"first rejected: {path}, line {line} ({reason}): {fix}"

    def as_dict(self) -> dict[str, object]:
        return {
            "records_total": self.records_total,
            "records_used": self.records_used,
            "records_skipped": dict(sorted(self.skipped.items())),
            "queries_dropped_incomplete": self.queries_dropped_incomplete,
            "ignored_columns": dict(self.ignored_columns),
        }


@dataclass(frozen=True)
class RoutingData:
    prompts: list[str]
    labels: np.ndarray  # float32 [n, m] in [0, 1]: realised quality of model j on prompt i
    costs: np.ndarray  # float64 [n, m]: dollars for that call
    candidates: list[CandidateModel]  # column order
    kinds: list[str | None]  # the record's "kind" when given, else None
    sha256: str  # over llm_data.json then routing_data.jsonl
    report: ReadReport
    # The published benchmark the files identify themselves as (e.g. "mmlu" for RouteLLM's
    # mmlu_<subject>.csv files), keying published reference figures; None for anything else.
    benchmark: str | None = None

    @property
    def prices(self) -> np.ndarray:
        return candidate_prices(self.candidates)

    def subset(self, index: np.ndarray) -> RoutingData:
        return RoutingData(
            prompts=[self.prompts[i] for i in index],
            labels=self.labels[index],
            costs=self.costs[index],
            candidates=self.candidates,
            kinds=[self.kinds[i] for i in index],
            sha256=self.sha256,
            report=self.report,
            benchmark=self.benchmark,
        )


def candidate_prices(candidates: Sequence[CandidateModel]) -> np.ndarray:
    """[m] price per million tokens in column order: what calibration ranks candidates by."""
    return np.array([c.cost_per_million_tokens for c in candidates], dtype=np.float64)


def read_candidates(path: Path) -> list[CandidateModel]:
    """Candidates from ``llm_data.json`` ({name: {provider, prices}}), in file order."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RoutingDataError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise RoutingDataError(f"{path} must be a non-empty object of model name -> description")
    candidates = []
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise RoutingDataError(f"{path}: entry {name!r} is not an object")
        price = _as_float(spec.get("cost_per_million_tokens"))
        if price is None:
            input_price = _as_float(spec.get("input_price"))
            output_price = _as_float(spec.get("output_price"))
            if input_price is not None and output_price is not None:
                price = (input_price + output_price) / 2
        if price is None or price < 0:
            raise RoutingDataError(
                f"{path}: model {name!r} has no usable price (cost_per_million_tokens or "
                "input_price + output_price)"
            )
        provider = spec.get("provider") or spec.get("service") or ""
        candidates.append(
            CandidateModel(
                model_name=str(name), provider=str(provider), cost_per_million_tokens=price
            )
        )
    return candidates


def read_routing_data(directory: Path) -> RoutingData:
    """Read ``llm_data.json`` + ``routing_data.jsonl`` from ``directory``."""
    directory = Path(directory)
    llm_path, routing_path = directory / LLM_DATA_FILE, directory / ROUTING_FILE
    if not routing_path.is_file():
        raise RoutingDataError(f"{routing_path} is missing")
    candidates = read_candidates(llm_path)
    column = {c.model_name: j for j, c in enumerate(candidates)}
    report = ReadReport()
    digest = hashlib.sha256(llm_path.read_bytes())

    rows: dict[str, dict[int, tuple[float, float]]] = {}
    kinds: dict[str, str | None] = {}
    with routing_path.open("rb") as fh:
        for number, raw_line in enumerate(fh, start=1):
            digest.update(raw_line)
            line = raw_line.strip()
            if not line:
                continue
            report.records_total += 1
            reason = _check_record(line, column)
            if isinstance(reason, str):
                report.skip(reason, routing_path, number)
                continue
            query, j, performance, cost, kind = reason
            per_model = rows.setdefault(query, {})
            if j in per_model:
                report.skip("duplicate_query_model", routing_path, number)
                continue
            per_model[j] = (performance, cost)
            kinds.setdefault(query, kind)
            report.records_used += 1

    m = len(candidates)
    prompts = [q for q, per_model in rows.items() if len(per_model) == m]
    for per_model in rows.values():
        if len(per_model) != m:
            report.queries_dropped_incomplete += 1
            report.records_used -= len(per_model)
    if not prompts:
        if rows:  # records were read, but every query misses some candidate
            query, per_model = next(iter(rows.items()))
            missing = [c.model_name for j, c in enumerate(candidates) if j not in per_model]
            fix = f"query {query[:60]!r} has no record for {missing}: add one record per "
            fix += f"(query, model described in {LLM_DATA_FILE})"
        else:
            fix = report.first_rejection(SKIP_FIXES)
        raise RoutingDataError(
            f"no query with a record for each of the {m} candidates ({report.as_dict()})",
            path=routing_path,
            fix=fix,
        )
    labels = np.array([[rows[q][j][0] for j in range(m)] for q in prompts], dtype=np.float32)
    costs = np.array([[rows[q][j][1] for j in range(m)] for q in prompts], dtype=np.float64)
    return RoutingData(
        prompts=prompts,
        labels=labels,
        costs=costs,
        candidates=candidates,
        kinds=[kinds[q] for q in prompts],
        sha256=digest.hexdigest(),
        report=report,
    )


def _check_record(
    line: bytes, column: dict[str, int]
) -> str | tuple[str, int, float, float, str | None]:
    """The parsed record, or the reason it is skipped."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "invalid_json"
    if not isinstance(record, dict):
        return "not_an_object"
    for name in REQUIRED_FIELDS:
        if record.get(name) is None:
            return f"missing_{name}"
    query, model, performance, cost = (record[n] for n in REQUIRED_FIELDS)
    if not isinstance(query, str) or not query.strip():
        return "invalid_query"
    if not isinstance(model, str) or model not in column:
        return "unknown_model"
    if not _is_number(performance) or not 0.0 <= float(performance) <= 1.0:
        return "invalid_performance"
    if not _is_number(cost) or float(cost) < 0.0:
        return "invalid_cost"
    kind = record.get("kind")
    return (
        query,
        column[model],
        float(performance),
        float(cost),
        (kind if isinstance(kind, str) else None),
    )


def _as_float(value: object) -> float | None:
    """``value`` as a float when it is a finite JSON number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row indices
    test: np.ndarray
    seed: int
    test_fraction: float


def split_queries(n: int, *, seed: int, test_fraction: float = 0.2) -> Split:
    """A reproducible query-level split: the same ``n`` and ``seed`` give the same split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    if n < 2:
        raise RoutingDataError(f"need at least 2 queries to split, have {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(n - 1, max(1, round(n * test_fraction)))
    return Split(
        train=np.sort(order[n_test:]),
        test=np.sort(order[:n_test]),
        seed=seed,
        test_fraction=test_fraction,
    )
