"""Optional MLflow experiment tracking: off unless asked, never required for training.

Enabled by ``--mlflow`` (a local file store under ``./mlruns`` unless a tracking URI is
given) or by ``MLFLOW_TRACKING_URI`` with ``--mlflow``. Needs the ``tracking`` extra
(``pip install 'routeiq[tracking]'``, which installs ``mlflow-skinny``); without it,
tracking is skipped with one warning and training goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def log_run(
    *,
    tracking_uri: str | None,
    experiment: str,
    run_name: str,
    params: Mapping[str, object],
    metrics: Mapping[str, object],
    artifacts: list[Path],
    bundle_dir: Path | None,
) -> str | None:
    """Log one training run; returns the run id, or None when MLflow is not installed."""
    try:
        import mlflow
    except ImportError:
        log.warning("MLflow tracking asked for but mlflow is not installed; skipping tracking")
        return None
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
    if uri.startswith("file:"):
        # MLflow 3 keeps the file store in maintenance mode behind this opt-in.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        numeric = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        mlflow.log_metrics(numeric)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        if bundle_dir is not None:
            mlflow.log_artifacts(str(bundle_dir), artifact_path="bundle")
        run_id: str = run.info.run_id
    log.info("logged MLflow run %s to %s", run_id, uri)
    return run_id
