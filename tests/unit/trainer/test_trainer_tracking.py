"""MLflow tracking: optional, logs params, metrics and artifacts to a local file store."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from trainer.tracking import log_run


def test_tracking_is_skipped_cleanly_without_mlflow(monkeypatch, tmp_path, caplog):
    real_import = builtins.__import__

    def no_mlflow(name: str, *args: object, **kwargs: object):
        if name == "mlflow":
            raise ImportError("no mlflow")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    run = log_run(
        tracking_uri=(tmp_path / "mlruns").as_uri(),
        experiment="x",
        run_name="r",
        params={},
        metrics={},
        artifacts=[],
        bundle_dir=None,
    )
    assert run is None and "not installed" in caplog.text


def test_run_is_logged_to_a_local_file_store(tmp_path: Path):
    mlflow = pytest.importorskip("mlflow")
    plot = tmp_path / "quality_cost.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_run(
        tracking_uri=uri,
        experiment="routeiq-test",
        run_name="knn-test",
        params={"router": "knn", "k": 5},
        metrics={"apgr": 0.71, "cpt50_pct": 22.5, "note": "text is not a metric"},
        artifacts=[plot],
        bundle_dir=bundle,
    )
    assert run_id
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(run_id)
    assert run.data.params == {"router": "knn", "k": "5"}
    assert run.data.metrics == {"apgr": 0.71, "cpt50_pct": 22.5}
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run_id)}
    assert artifacts == {"quality_cost.png", "bundle"}
