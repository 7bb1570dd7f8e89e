"""Which reader a ``--data`` path goes to, and the data set's name.

``auto`` detection, first match wins (a directory that matched before keeps its format):

1. a directory holding ``routing_data.jsonl``, or that file itself: ``llmrouter``;
2. a directory holding ``*.csv``, or one ``.csv`` file: ``routellm-csv``;
3. a directory holding other ``*.jsonl`` (not ``question.jsonl`` or
   ``contaminated_prompts.jsonl``), or one ``.jsonl`` file: ``judgements``.

Anything else is refused with what was expected. ``--data-format`` skips detection.
"""

from __future__ import annotations

from pathlib import Path

from trainer.data import RoutingData, RoutingDataError, read_routing_data
from trainer.sources.judgements import NOT_JUDGEMENTS, read_judgements
from trainer.sources.routellm_csv import read_routellm_csv
from trainer.synthetic import ROUTING_FILE

DATA_FORMATS = ("auto", "llmrouter", "routellm-csv", "judgements")


def detect_format(path: Path) -> str:
    path = Path(path)
    if path.is_file():
        if path.name == ROUTING_FILE:
            return "llmrouter"
        if path.suffix == ".csv":
            return "routellm-csv"
        if path.suffix == ".jsonl" and path.name not in NOT_JUDGEMENTS:
            return "judgements"
        raise RoutingDataError(
            f"{path} is neither {ROUTING_FILE}, a RouteLLM .csv nor a judgements .jsonl"
        )
    if not path.is_dir():
        raise RoutingDataError(f"{path} does not exist")
    if (path / ROUTING_FILE).is_file():
        return "llmrouter"
    if any(path.glob("*.csv")):
        return "routellm-csv"
    if any(p.name not in NOT_JUDGEMENTS for p in path.glob("*.jsonl")):
        return "judgements"
    raise RoutingDataError(
        f"{path} holds neither {ROUTING_FILE}, RouteLLM *.csv files nor judgement *.jsonl files"
    )


def read_data(path: Path, data_format: str = "auto") -> tuple[RoutingData, str]:
    """The data set at ``path`` (a directory or one file) and the format it was read as."""
    path = Path(path)
    if data_format == "auto":
        data_format = detect_format(path)
    if data_format == "llmrouter":
        return read_routing_data(path.parent if path.is_file() else path), data_format
    if data_format == "routellm-csv":
        return read_routellm_csv(path), data_format
    if data_format == "judgements":
        return read_judgements(path), data_format
    raise ValueError(f"unknown data format {data_format!r}; choose from {DATA_FORMATS}")


def dataset_name(path: Path, explicit: str | None = None) -> str:
    """``explicit`` when given, else the data file's stem or the directory's name."""
    if explicit:
        return explicit
    path = Path(path)
    return path.stem if path.is_file() else (path.resolve().name or str(path))
