"""MLflow tracking, embedded by default: with no URI, runs go to `sqlite:///<output>/mlflow.db`, which
`mlflow ui --backend-store-uri sqlite:///<output>/mlflow.db` opens with no server to start.

Metrics are buffered and written in one `log_batch` call at most every `FLUSH_SECONDS` (and at every artifact,
and at the end): one MLflow call per optimizer step cost about 38 ms on the sqlite store, 15% of a small model's
step. A process killed between two flushes loses at most those seconds of MLflow metrics; `metrics.jsonl` in
the run folder has every step.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

SECRET_MARKERS = ("token", "secret", "password", "api_key", "apikey", "credential")
FLUSH_SECONDS = 5.0
MAX_BATCH = 1000  # MLflow takes at most 1,000 metrics a batch


def default_store(output_path: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(output_path).resolve() / 'mlflow.db'}"


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> flat `a.b.c` params; values that look like secrets are masked, never logged."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        elif any(m in key.lower() for m in SECRET_MARKERS):
            flat[name] = "***"
        else:
            flat[name] = str(value)[:6000]
    return flat


class MlflowTracker:
    """One MLflow run. Created on rank 0 only; other ranks get a NullTracker."""

    def __init__(self, *, experiment_name: str, tracking_uri: str, run_name: str | None = None,
                 run_id: str | None = None) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
        import mlflow

        self._mlflow = mlflow
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_experiment(experiment_name)
        # resuming continues the same MLflow run
        self._run = mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(run_name=run_name)
        self.run_id = self._run.info.run_id
        self._pending: list = []  # mlflow.entities.Metric, not yet written
        self._flushed_at = time.monotonic()

    def log_params(self, params: dict[str, Any]) -> None:
        """Log the flattened params. A resumed run already holds some: those with the same value are skipped
        (MLflow refuses to log a param twice); a different value is an error, as is any failure of MLflow."""
        logged = self._mlflow.get_run(self.run_id).data.params
        flat = flatten(params)
        changed = sorted(k for k, v in flat.items() if k in logged and logged[k] != v)
        if changed:
            from mixforge.errors import ConfigError

            raise ConfigError([f"{k}: run {self.run_id} logged {logged[k]!r}, this config has {flat[k]!r}"
                               for k in changed[:10]] + ([f"... {len(changed) - 10} more"] if len(changed) > 10 else []),
                              hint="MLflow keeps one value per param of a run: resume with the same settings, "
                                   "or train into a new output_path")
        items = [(k, v) for k, v in flat.items() if k not in logged]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self._mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now_ms, step) for k, v in metrics.items())
        if time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered metrics now (in order, at most MAX_BATCH a call)."""
        client = self._mlflow.MlflowClient()
        for i in range(0, len(self._pending), MAX_BATCH):
            client.log_batch(self.run_id, metrics=self._pending[i : i + MAX_BATCH])
        self._pending.clear()
        self._flushed_at = time.monotonic()

    def log_artifact(self, path: str) -> None:
        self.flush()
        if Path(path).is_dir():
            self._mlflow.log_artifacts(path, artifact_path=Path(path).name)
        else:
            self._mlflow.log_artifact(path)

    def finish(self, status: str = "FINISHED") -> None:
        self.flush()
        self._mlflow.end_run(status=status)
