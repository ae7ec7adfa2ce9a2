"""The MLflow tracker on a resumed run: params it already holds are skipped by checking. It used to swallow
every MlflowException of a 100-param batch, so one changed value silently dropped up to 99 other params (the
last two tests failed then); now a changed value is an error naming it, and any other failure surfaces."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("mlflow")  # the `mlflow` extra


@pytest.fixture
def store(tmp_path):
    os.environ["MLFLOW_ENABLE_TELEMETRY"] = "false"
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _tracker(store, run_id=None):
    from mixforge.track.mlflow import MlflowTracker

    return MlflowTracker(experiment_name="t", tracking_uri=store, run_name="r", run_id=run_id)


def _logged(store, run_id) -> dict[str, str]:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=store).get_run(run_id).data.params


def test_a_resumed_run_gets_every_new_param(store):
    first = {f"p{i:03d}": i for i in range(150)}
    tracker = _tracker(store)
    tracker.log_params(first)
    tracker.finish()

    resumed = _tracker(store, run_id=tracker.run_id)
    # new params first, so they share a 100-param batch with params the run already holds
    resumed.log_params({"new": {"a": 1, "b": "x"}, **first, "last": 2.5})
    resumed.finish()
    logged = _logged(store, tracker.run_id)
    assert len(logged) == 153
    assert (logged["new.a"], logged["new.b"], logged["last"], logged["p149"]) == ("1", "x", "2.5", "149")


def test_a_changed_value_is_an_error_naming_it(store):
    from mixforge.errors import ConfigError

    tracker = _tracker(store)
    tracker.log_params({"max_steps": 10, "lr": 0.1})
    with pytest.raises(ConfigError, match="max_steps: run .* logged '10', this config has '20'"):
        tracker.log_params({"max_steps": 20, "lr": 0.1})
    tracker.finish()


def test_other_mlflow_errors_surface(store):
    from mlflow.exceptions import MlflowException

    tracker = _tracker(store)
    with pytest.raises(MlflowException):
        tracker.log_params({"x" * 300: 1})  # MLflow limits a param name to 250 characters
    tracker.finish()


def test_metrics_are_buffered_and_all_written_at_finish(store, monkeypatch):
    import mlflow

    from mixforge.track import mlflow as tracking

    monkeypatch.setattr(tracking, "FLUSH_SECONDS", 3600.0)  # no time-based flush inside this test
    monkeypatch.setattr(tracking, "MAX_BATCH", 7)  # several batches at finish
    tracker = _tracker(store)
    client = mlflow.MlflowClient(tracking_uri=store)
    for step in range(1, 11):
        tracker.log_metrics({"loss": 1.0 / step, "lr": 0.5}, step)
    assert client.get_metric_history(tracker.run_id, "loss") == []  # buffered, not yet written
    tracker.finish()
    history = client.get_metric_history(tracker.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / s) for s in range(1, 11)]
    assert len(client.get_metric_history(tracker.run_id, "lr")) == 10


def test_metrics_flush_once_the_interval_passed(store, monkeypatch):
    import mlflow

    from mixforge.track import mlflow as tracking

    monkeypatch.setattr(tracking, "FLUSH_SECONDS", 0.0)  # every call flushes
    tracker = _tracker(store)
    tracker.log_metrics({"loss": 2.0}, 1)
    history = mlflow.MlflowClient(tracking_uri=store).get_metric_history(tracker.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0)]
    tracker.finish()
