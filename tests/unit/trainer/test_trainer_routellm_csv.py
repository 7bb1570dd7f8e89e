"""RouteLLM CSVs beyond MMLU: answer-text columns ignored and reported, and unusable files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trainer.data import RoutingDataError, read_routing_data
from trainer.sources.formats import read_data
from trainer.sources.routellm_csv import read_routellm_csv

MIXTRAL, GPT4 = "mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview"

# As RouteLLM's gsm8k/gsm8k_responses.csv: correctness columns, then each model's answer
# text (quoted, multi-line, with commas) in a `<model>_response` column.
GSM8K = (
    f"prompt,{MIXTRAL},{GPT4},{MIXTRAL}_response,{GPT4}_response\n"
    "Janet's ducks lay 16 eggs per day. How much does she make?,True,True,"
    '" Janet has 16 - 3 - 4 = 9 eggs.\nShe sells them for 9 * $2 = $18.\n#### 18",'
    '"She sells 9 eggs, so she makes $18."\n'
    '"Josh buys a house for $80,000. How much profit did he make?",False,True,'
    '" The value is 80,000 + 50,000 = $130,00","The profit is $70,000."\n'
    "A robe takes 2 bolts of blue fiber and half that much white. How many in total?,"
    'True,False," It takes 3 bolts.\n\n","It takes 2.5 bolts."\n'
)


def test_responses_csv_ignores_answer_text_and_says_so(tmp_path: Path):
    path = tmp_path / "gsm8k" / "gsm8k_responses.csv"
    path.parent.mkdir()
    path.write_text(GSM8K)
    for given in (path, path.parent):  # one file, or the directory holding it
        data, data_format = read_data(given)
        assert data_format == "routellm-csv"
        assert [c.model_name for c in data.candidates] == [MIXTRAL, GPT4]
        assert data.prices.tolist() == [0.24, 24.7]
        np.testing.assert_array_equal(data.labels, [[1, 1], [0, 1], [1, 0]])
        assert data.prompts[1] == "Josh buys a house for $80,000. How much profit did he make?"
        assert data.report.records_total == data.report.records_used == 3
        assert data.report.as_dict()["ignored_columns"] == {
            f"{MIXTRAL}_response": f"answer text of {MIXTRAL!r}, not a label",
            f"{GPT4}_response": f"answer text of {GPT4!r}, not a label",
        }
        assert data.kinds == ["gsm8k_responses"] * 3
        assert data.benchmark is None  # not RouteLLM's mmlu_<subject>.csv files


def test_text_and_index_columns_are_ignored_label_valued_unknown_columns_need_a_price(
    tmp_path: Path,
):
    # Re-saved with pandas: a leading row index, an `answer` column beside the labels.
    (tmp_path / "math.csv").write_text(
        f",prompt,{MIXTRAL},{GPT4},answer\n0,What is 2+2?,True,True,4\n"
        f"1,What is 17*23?,False,True,391\n2,Name a prime.,1,0.5,7\n"
    )
    data = read_routellm_csv(tmp_path)
    np.testing.assert_array_equal(data.labels, [[1, 1], [0, 1], [1, 0.5]])
    ignored = data.report.ignored_columns
    assert ignored[""] == "unnamed column (a saved row index), not a label"
    assert ignored["answer"].startswith("not a label column: line 2 holds '4'")
    (tmp_path / "math.csv").write_text(f"prompt,{MIXTRAL},judge-x\nQ,True,0\n")
    with pytest.raises(RoutingDataError, match="no price for model 'judge-x'"):
        read_routellm_csv(tmp_path)


def test_mmlu_files_are_identified_by_their_names_only(tmp_path: Path):
    header = f"prompt,{MIXTRAL},{GPT4}\n"
    (tmp_path / "mmlu_anatomy.csv").write_text(header + "Q1,True,True\n")
    (tmp_path / "mmlu_virology.csv").write_text(header + "Q2,False,True\n")
    assert read_routellm_csv(tmp_path).benchmark == "mmlu"
    assert read_routellm_csv(tmp_path / "mmlu_anatomy.csv").benchmark == "mmlu"
    (tmp_path / "extra.csv").write_text(header + "Q3,False,True\n")
    assert read_routellm_csv(tmp_path).benchmark is None


def _error(path: Path, reader: Callable[[Path], object] = read_routellm_csv) -> RoutingDataError:
    with pytest.raises(RoutingDataError) as caught:
        reader(path)
    return caught.value


def test_unusable_csv_files_name_file_line_and_fix(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"question,{MIXTRAL},{GPT4}\nQ,True,True\n")
    error = _error(bad)
    assert (error.path, error.line) == (bad, 1)
    assert "names no 'prompt' column" in str(error) and "to fix: name the prompt" in str(error)

    bad.write_text(f"prompt,{MIXTRAL}_response,{GPT4}_response\nQ,a,b\n")
    error = _error(bad)
    assert error.line == 1 and "no label column" in str(error)
    assert "answer text of" in str(error)  # says why the columns did not count

    bad.write_text(f'prompt,{MIXTRAL},{GPT4}\n"Q1\nA. x",maybe,True\nQ2,True,perhaps\n')
    message = str(_error(bad))
    assert "no usable rows" in message
    assert f"first rejected: {bad}, line 2 (missing_or_invalid_label)" in message
    assert "True/False, 1/0 or a number in [0, 1]" in message
    # Lines are counted in the file, not in records: the quoted prompt spans two lines.
    bad.write_text(f'prompt,{MIXTRAL},{GPT4}\n"Q1\nA. x",True,True\n,True,True\n')
    assert read_routellm_csv(bad).report.first_skip == {"missing_prompt": (str(bad), 4)}

    (tmp_path / "bad.csv").unlink()
    (tmp_path / "a.csv").write_text(f"prompt,{MIXTRAL},{GPT4}\nQ,True,True\n")
    (tmp_path / "b.csv").write_text(f"prompt,{GPT4},{MIXTRAL}\nR,True,True\n")
    error = _error(tmp_path)
    assert (error.path, error.line) == (tmp_path / "b.csv", 1)
    assert "differ from" in str(error) and "same model columns" in str(error)

    (tmp_path / "b.csv").write_bytes(b"prompt,x\n\xff\xfe,1\n")
    error = _error(tmp_path)
    assert error.path == tmp_path / "b.csv" and "save the file as UTF-8" in str(error)


def test_llmrouter_error_names_the_first_rejected_line(tmp_path: Path):
    (tmp_path / "llm_data.json").write_text(
        json.dumps({"a": {"cost_per_million_tokens": 1.0}, "b": {"cost_per_million_tokens": 2}})
    )
    good = {"query": "q", "model_name": "a", "performance": 1.0, "cost": 0.1}
    (tmp_path / "routing_data.jsonl").write_text(
        "\n" + json.dumps(good) + "\n{not json\n" + json.dumps({**good, "model_name": "b"})[:-1]
    )
    message = str(_error(tmp_path, read_routing_data))
    assert "no query with a record for each of the 2 candidates" in message
    assert "query 'q' has no record for ['b']" in message  # read, but incomplete
    (tmp_path / "routing_data.jsonl").write_text("{not json\n" + json.dumps({**good, "cost": -1}))
    message = str(_error(tmp_path, read_routing_data))
    assert "line 1 (invalid_json): write one JSON object per line" in message
