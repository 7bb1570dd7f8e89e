"""Data in: RouteLLM CSVs, OTLP JSON telemetry files, and the on-disk embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from decision_service.encoder import OnnxEncoder
from trainer.embed_cache import EmbeddingCache
from trainer.errors import RoutingDataError
from trainer.pipeline import read_data
from trainer.sources.routellm_csv import read_routellm_csv
from trainer.sources.telemetry import EVENT_NAME, PAYLOAD_KEY, read_otlp_json

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"


def _csvs(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mmlu_anatomy.csv").write_text(
        f'prompt,{WEAK},{STRONG}\n"Q1\nA. x\nAnswer:",True,True\nQ2,False,True\n'
        'Q3,,True\n,True,True\nQ4,maybe,True\n"Q1\nA. x\nAnswer:",False,False\n'
        '"Q5",True,False\n'
    )
    (directory / "mmlu_virology.csv").write_text(
        f"prompt,{WEAK},{STRONG}\nQ6,0.5,1\nQ7,True,True\n"
    )
    (directory / "contaminated_prompts.jsonl").write_text(
        json.dumps({"train_prompt": "x", "eval_prompt": "Q7"}) + "\n"
    )
    return directory


def test_routellm_csv_reads_labels_counts_skips_and_excludes_contaminated(tmp_path):
    data = read_routellm_csv(_csvs(tmp_path / "csv"))
    assert data.prompts == ["Q1\nA. x\nAnswer:", "Q2", "Q5", "Q6"]
    np.testing.assert_array_equal(data.labels, [[1, 1], [0, 1], [1, 0], [0.5, 1]])
    assert data.kinds == ["anatomy", "anatomy", "anatomy", "virology"]
    assert data.report.records_total == 9 and data.report.records_used == 4
    assert dict(data.report.skipped) == {
        "missing_or_invalid_label": 2,
        "missing_prompt": 1,
        "duplicate_prompt": 1,
        "contaminated": 1,
    }
    assert [c.model_name for c in data.candidates] == [WEAK, STRONG]
    assert data.prices.tolist() == [0.24, 24.7]
    assert read_data(tmp_path / "csv")[1] == "routellm-csv"
    again = read_routellm_csv(tmp_path / "csv")
    assert again.sha256 == data.sha256


def test_routellm_csv_needs_a_price_for_every_model(tmp_path):
    (tmp_path / "a.csv").write_text("prompt,unknown-model,other\nQ,True,False\n")
    with pytest.raises(RoutingDataError, match="no price for model 'unknown-model'"):
        read_routellm_csv(tmp_path)
    (tmp_path / "llm_data.json").write_text(
        json.dumps(
            {
                "unknown-model": {"cost_per_million_tokens": 1.0},
                "other": {"cost_per_million_tokens": 3.0},
            }
        )
    )
    assert read_routellm_csv(tmp_path).prices.tolist() == [1.0, 3.0]


def _otlp_line(events: list[dict[str, object]], spans: list[object] | None = None) -> str:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "Route", "events": events}
    return json.dumps(
        {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans or [span]}]}]}
    )


def _event(payload: object, *extra: dict[str, object]) -> dict[str, object]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return {
        "name": EVENT_NAME,
        "timeUnixNano": "1",
        "attributes": [{"key": PAYLOAD_KEY, "value": {"stringValue": text}}, *extra],
    }


def payload(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "contract_version": "v1",
        "contract_name": "routeiq.router_decision.v1",
        "event_id": "e1",
        "trace_id": "ab" * 16,
        "selected_deployment": "gpt-4o-mini",
        "query_embedding": [0.6, 0.8],
        "outcome": {"status": "success", "quality": 0.75, "cost": 0.002},
    }
    base.update(overrides)
    return base


def test_otlp_file_reader_keeps_labelled_examples_and_counts_the_rest(tmp_path):
    lines = [
        _otlp_line(
            [
                _event(payload()),
                _event(payload(event_id="e2", outcome={"status": "timeout"})),
                _event(payload(query_embedding={"scale": 0.01, "values": [60, -80]})),
                _event(payload(query_embedding=None)),
                # As decision_service.telemetry attaches an opted-in embedding.
                _event(
                    payload(event_id="e3", query_embedding=None),
                    {"key": "routeiq.query_embedding.int8_b64", "value": {"stringValue": "fwA="}},
                    {"key": "routeiq.query_embedding.scale", "value": {"doubleValue": 0.5}},
                ),
                _event(payload(outcome={"status": "success"})),
                _event(payload(contract_version="v0")),
                _event("{not json"),
                {"name": "other.event", "attributes": []},
            ]
        ),
        "not json at all",
        _otlp_line([], spans=["not a span"]),
        "",
    ]
    path = tmp_path / "traces.json"
    path.write_text("\n".join(lines))
    examples, report = read_otlp_json([path])
    assert [(e.event_id, e.quality) for e in examples] == [
        ("e1", 0.75),
        ("e2", 0.0),
        ("e1", 0.75),
        ("e3", 0.75),
    ]
    np.testing.assert_allclose(examples[2].embedding, [0.6, -0.8], atol=1e-6)
    np.testing.assert_allclose(examples[3].embedding, [63.5, 0.0])
    assert examples[0].cost == 0.002 and examples[1].cost is None
    assert report.events_seen == 8 and report.used == 4
    assert dict(report.skipped) == {
        "no_features": 1,
        "no_label": 1,
        "contract_version_unsupported": 1,
        "payload_invalid_json": 1,
        "line_invalid_json": 1,
        "span_malformed": 1,
    }


def test_an_otlp_file_with_no_json_object_is_refused_with_its_line(tmp_path):
    path = tmp_path / "jaeger-export.json"
    path.write_text('\n["not", "an", "OTLP request"]\n{truncated\n')
    with pytest.raises(RoutingDataError) as caught:
        read_otlp_json([path])
    assert (caught.value.path, caught.value.line) == (path, 2)
    assert "Collector file exporter" in str(caught.value)
    # One good line among bad ones is damage, not a wrong file: counted, not refused.
    path.write_text("{truncated\n" + _otlp_line([_event(payload())]) + "\n")
    examples, report = read_otlp_json([path])
    assert len(examples) == 1 and report.skipped["line_invalid_json"] == 1


def test_embedding_cache_reuses_vectors_per_encoder(encoder_dir: Path, tmp_path, monkeypatch):
    encoder = OnnxEncoder(encoder_dir)
    texts = ["What is 2+2?", "Translate 'cat' into French.", "What is 2+2?"]
    first = EmbeddingCache(tmp_path, encoder).embed(texts)
    assert first.shape == (3, 384)
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_allclose(first, encoder.encode(texts).embeddings, atol=1e-5)
    chunks = list((tmp_path / encoder.identity.digest).glob("chunk-*.npz"))
    assert len(chunks) == 1

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the cache should have answered")

    fresh = EmbeddingCache(tmp_path, encoder)  # a new process: reads the chunk back
    monkeypatch.setattr(encoder, "encode", refuse)
    assert len(fresh) == 2
    np.testing.assert_array_equal(fresh.embed(texts[:2]), first[:2])


def test_telemetry_cli_writes_examples_and_the_skip_report(tmp_path, capsys):
    from trainer.cli import main

    path = tmp_path / "traces.json"
    path.write_text(_otlp_line([_event(payload()), _event(payload(query_embedding=None))]))
    out = tmp_path / "decisions.jsonl"
    assert main(["telemetry", "--otlp", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert '"no_features": 1' in printed and "1 examples written" in printed
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["model_name"] == "gpt-4o-mini" and record["performance"] == 0.75
    assert record["embedding"] == [0.6, 0.8]
    assert main(["telemetry", "--out", str(out)]) == 2  # neither source given
