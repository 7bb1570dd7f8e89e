"""RouteLLM's wide CSV format: a ``prompt`` column and one correctness column per model.

As in RouteLLM's published evaluation files: ``mmlu/responses/mmlu_<subject>.csv``
(``prompt,<model a>,<model b>``) and ``gsm8k/gsm8k_responses.csv`` (``prompt,<model a>,
<model b>,<model a>_response,<model b>_response``). Label cells are ``True`` / ``False``,
``1`` / ``0`` or numbers in [0, 1]. ``--data`` is one CSV file or a directory whose
``*.csv`` are all read, in name order; all files must label the same models. The file's
stem minus a leading ``mmlu_`` is the row's ``kind`` (the MMLU subject).

Which columns are labels, in this order:

1. ``prompt`` (anywhere in the header) is the prompt;
2. a column named ``<anything>_response`` holds a model's answer text: ignored;
3. an unnamed column (``""`` or pandas' ``Unnamed: 0``, a saved row index): ignored;
4. a column naming a priced model (described in ``llm_data.json`` beside the data, or in
   ``KNOWN_PRICES``) is that model's label column;
5. any other column is a label column when every non-empty cell is a label value (it then
   needs a price, else the read fails naming the model); when a cell is not (free text, a
   number outside [0, 1]), the column is ignored, e.g. an ``answer`` column.

Every ignored column is listed with its reason in the read report (``ignored_columns``).

Nothing is filled in: a row with an empty prompt, a missing or unparsable label, or a
prompt already seen (duplicates would leak across the split) is skipped and counted by
reason. Prompts listed in ``contaminated_prompts.jsonl`` (``{"eval_prompt": ...}`` lines,
RouteLLM's list of prompts that overlap its router training data) are excluded by
default, as RouteLLM's own evaluation excludes them. A file that cannot be used at all (no
``prompt`` column, no label column, no usable row) raises ``RoutingDataError`` naming the
file, the line and the fix.

The data set is identified as the ``mmlu`` benchmark (``RoutingData.benchmark``, which
keys published reference figures) when every file read is named ``mmlu_<subject>.csv``,
RouteLLM's naming for its MMLU responses; never from row counts or contents.

The CSVs carry no prices. They come from ``llm_data.json`` when present, else from
``KNOWN_PRICES`` (the per-million-token prices RouteLLM uses for its cost figures); a model
with neither is an error, never a guessed price. Each call is costed as ``NOMINAL_TOKENS``
tokens at that price (the CSVs have no token counts), so dollar columns compare policies,
not bills.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np

from decision_service.manifest import CandidateModel
from trainer.data import ReadReport, RoutingData, RoutingDataError, read_candidates
from trainer.synthetic import LLM_DATA_FILE

CONTAMINATED_FILE = "contaminated_prompts.jsonl"
NOMINAL_TOKENS = 1000
RESPONSE_SUFFIX = "_response"
MMLU_PREFIX = "mmlu_"
# RouteLLM (arXiv:2406.18665, section 5.1): GPT-4 at $24.7 and Mixtral 8x7B at $0.24 per
# million tokens (input/output blend). gsm8k_responses.csv spells Mixtral in lower case.
KNOWN_PRICES: dict[str, tuple[str, float]] = {
    "gpt-4-1106-preview": ("openai", 24.7),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ("together_ai", 0.24),
    "mixtral-8x7b-instruct-v0.1": ("together_ai", 0.24),
}
CSV_FIXES = {
    "wrong_column_count": "give the row as many cells as the header (quote cells that hold "
    "commas or line breaks)",
    "missing_prompt": "give the row a non-empty prompt",
    "missing_or_invalid_label": "label cells must be True/False, 1/0 or a number in [0, 1]",
    "contaminated": f"the prompt is listed in {CONTAMINATED_FILE}; nothing to fix",
    "duplicate_prompt": "keep each prompt once",
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
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RoutingDataError(
                f"not JSON ({exc.msg})", path=path, line=number, fix='write {"eval_prompt": ...}'
            ) from exc
        if isinstance(record, dict) and isinstance(record.get("eval_prompt"), str):
            prompts.add(record["eval_prompt"])
    return prompts


def described_models(directory: Path) -> dict[str, CandidateModel]:
    """The models ``llm_data.json`` beside the data describes (empty when there is none)."""
    llm_path = Path(directory) / LLM_DATA_FILE
    return {c.model_name: c for c in read_candidates(llm_path)} if llm_path.is_file() else {}


def priced_candidates(
    directory: Path, models: list[str], described: dict[str, CandidateModel] | None = None
) -> list[CandidateModel]:
    """``models`` priced from ``llm_data.json``, else ``KNOWN_PRICES``; never guessed."""
    described = described_models(directory) if described is None else described
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
                f"no price for model {name!r}",
                fix=f"describe it in {Path(directory) / LLM_DATA_FILE} "
                "({name: {cost_per_million_tokens, provider}})",
            )
    return candidates


def nominal_costs(candidates: list[CandidateModel], n: int) -> np.ndarray:
    prices = np.array([c.cost_per_million_tokens for c in candidates], np.float64)
    return np.tile(prices * NOMINAL_TOKENS / 1e6, (n, 1))


def _records(path: Path, raw: bytes) -> list[tuple[int, list[str]]]:
    """(1-based line where the record starts, cells) for every CSV record in the file."""
    try:
        text = raw.decode("utf-8-sig")  # a BOM (spreadsheet export) is not part of 'prompt'
    except UnicodeDecodeError as exc:
        raise RoutingDataError(
            f"not UTF-8 text (byte {exc.start})", path=path, fix="save the file as UTF-8"
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    records, start = [], 1
    try:
        for row in reader:
            if row:  # a blank line is not a record
                records.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise RoutingDataError(
            f"unreadable CSV ({exc})", path=path, line=start, fix="close the quoted cell"
        ) from exc
    return records


def _columns(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], priced: set[str]
) -> tuple[int, list[int], dict[str, str]]:
    """Prompt column, label columns and {ignored column: reason}, by the module's rules."""
    if "prompt" not in header:
        raise RoutingDataError(
            f"the header {header[:4]} names no 'prompt' column",
            path=path,
            line=1,
            fix="name the prompt column 'prompt', as RouteLLM's files do: prompt,<model>,...",
        )
    prompt_at = header.index("prompt")
    label_at: list[int] = []
    ignored: dict[str, str] = {}
    for j, name in enumerate(header):
        if j == prompt_at:
            continue
        if name.endswith(RESPONSE_SUFFIX):
            ignored[name] = f"answer text of {name.removesuffix(RESPONSE_SUFFIX)!r}, not a label"
        elif not name.strip() or name.startswith("Unnamed: "):
            ignored[name] = "unnamed column (a saved row index), not a label"
        elif name in priced:
            label_at.append(j)
        else:
            cells = [(line, row[j]) for line, row in rows if j < len(row) and row[j].strip()]
            bad = next(((line, c) for line, c in cells if _label(c) is None), None)
            if bad is not None:
                ignored[name] = (
                    f"not a label column: line {bad[0]} holds {bad[1][:40]!r} (labels are "
                    "True/False or numbers in [0, 1])"
                )
            elif not cells:
                ignored[name] = "empty column"
            else:
                label_at.append(j)  # an unpriced model: priced_candidates names it
    if not label_at:
        raise RoutingDataError(
            f"no label column among {header} (ignored: {ignored})",
            path=path,
            line=1,
            fix="add one column per model, named as the model, holding True/False or a "
            "score in [0, 1] for each prompt",
        )
    return prompt_at, label_at, ignored


def read_routellm_csv(path: Path, *, exclude_contaminated: bool = True) -> RoutingData:
    path = Path(path)
    directory = path.parent if path.is_file() else path
    files = [path] if path.is_file() else sorted(path.glob("*.csv"))
    if not files:
        raise RoutingDataError(f"{path} holds no *.csv files")
    contaminated = read_contaminated(directory) if exclude_contaminated else set()
    described = described_models(directory)
    priced = set(described) | set(KNOWN_PRICES)
    report = ReadReport()
    digest = hashlib.sha256()
    models: list[str] | None = None
    prompts: list[str] = []
    labels: list[list[float]] = []
    kinds: list[str | None] = []
    seen: set[str] = set()
    for file in files:
        raw = file.read_bytes()
        digest.update(file.name.encode() + b"\0" + raw)
        records = _records(file, raw)
        if not records:
            raise RoutingDataError("empty file", path=file, line=1, fix="write a header row")
        header, rows = records[0][1], records[1:]
        prompt_at, label_at, ignored = _columns(file, header, rows, priced)
        report.ignored_columns.update(ignored)
        file_models = [header[j] for j in label_at]
        if models is None:
            models = file_models
        elif file_models != models:
            raise RoutingDataError(
                f"label columns {file_models} differ from {models} in {files[0].name}",
                path=file,
                line=1,
                fix="give every CSV the same model columns, or read the files separately",
            )
        kind = file.stem.removeprefix(MMLU_PREFIX)
        for line, row in rows:
            report.records_total += 1
            checked = _check_row(row, len(header), prompt_at, label_at, seen, contaminated)
            if isinstance(checked, str):
                report.skip(checked, file, line)
                continue
            prompt, values = checked
            seen.add(prompt)
            prompts.append(prompt)
            labels.append(values)
            kinds.append(kind)
            report.records_used += 1
    assert models is not None
    if not prompts:
        raise RoutingDataError(
            f"no usable rows ({report.as_dict()})",
            path=path,
            fix=report.first_rejection(CSV_FIXES),
        )
    candidates = priced_candidates(directory, models, described)
    return RoutingData(
        prompts=prompts,
        labels=np.asarray(labels, dtype=np.float32),
        costs=nominal_costs(candidates, len(prompts)),
        candidates=candidates,
        kinds=kinds,
        sha256=digest.hexdigest(),
        report=report,
        benchmark="mmlu" if all(f.name.startswith(MMLU_PREFIX) for f in files) else None,
    )


def _check_row(
    row: list[str],
    width: int,
    prompt_at: int,
    label_at: list[int],
    seen: set[str],
    contaminated: set[str],
) -> str | tuple[str, list[float]]:
    if len(row) != width:
        return "wrong_column_count"
    prompt = row[prompt_at]
    if not prompt.strip():
        return "missing_prompt"
    values = [_label(row[j]) for j in label_at]
    if any(v is None for v in values):
        return "missing_or_invalid_label"
    if prompt in contaminated:
        return "contaminated"
    if prompt in seen:
        return "duplicate_prompt"
    return prompt, [float(v) for v in values if v is not None]


def kind_counts(data: RoutingData) -> dict[str, int]:
    return dict(sorted(Counter(k for k in data.kinds if k is not None).items()))
