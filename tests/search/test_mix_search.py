"""The mixture search end to end on the tiny model: two trials of a few steps write search.json with its
fields, a rerun trains nothing again, the recommended config passes `mixforge train --dry-run`, the CLI runs
the same search, and --validate trains the recommendation at the config's budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mixforge.cli.app import app
from mixforge.errors import ConfigError
from mixforge.search.mix_search import mix_search

pytestmark = pytest.mark.slow


def search(run_yaml, files, out, **kw):
    return mix_search(run_yaml, percents=kw.pop("percents", [100, 50]), steps=kw.pop("steps", 3),
                      general=files["general"], domain=files["test"], labels=files["labels"], out=out,
                      n_resamples=kw.pop("n_resamples", 50), show_progress=False, **kw)


def test_two_trials_write_search_json_and_a_rerun_trains_nothing(run_yaml, search_files, tmp_path):
    out = tmp_path / "search"
    first = search(run_yaml, search_files, out)
    assert first.trained == ["customer-100", "customer-50"] and first.reused == []

    data = json.loads((out / "search.json").read_text())
    assert [t["name"] for t in data["trials"]] == ["customer-100", "customer-50"]
    for t in data["trials"]:
        assert set(t) >= {"mix", "retention", "domain", "general", "intervals", "cost", "signals"}
        assert t["cost"]["steps"] == 3 and t["cost"]["tokens"] > 0 and t["cost"]["train_seconds"] > 0
        low, high = t["intervals"]["retention"]
        assert low <= t["retention"] <= high
        assert t["retention"] == pytest.approx(t["general"] / data["base"]["general"])
        assert t["signals"]["kl_to_base"] is not None and t["signals"]["val_loss"]  # from metrics.jsonl
    assert data["trials"][0]["mix"] == {"customer_data_percent": 100.0, "categories": {}}
    assert data["trials"][1]["mix"] == {"customer_data_percent": 50.0, "categories": {"math": 100.0}}
    assert "math/embedded" in data["trials"][1]["signals"]["val_loss"]
    assert set(data["pareto"]) <= {"customer-100", "customer-50"} and data["pareto"]
    rec = data["recommendation"]
    assert rec["trial"] in data["pareto"] or rec["rule"] == "retention_lower_bound"
    assert Path(rec["config"]).is_file() and (out / "search.html").is_file()
    assert (out / "report" / "report.html").is_file() and (out / "pareto.png").stat().st_size > 1000
    assert "data:image/png;base64," in (out / "search.html").read_text()

    # MLflow: a parent run and one child run per trial
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    ids = json.loads((out / "mlflow.json").read_text())
    children = mlflow.search_runs(experiment_names=["toy-search"],
                                  filter_string=f"tags.mlflow.parentRunId = '{ids['parent']}'")
    assert sorted(children["tags.mlflow.runName"]) == ["customer-100", "customer-50"]

    # a rerun reuses both trials: nothing is trained or evaluated again
    trained_files = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/trained.json")}
    finals = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/run/final/*")}
    again = search(run_yaml, search_files, out)
    assert again.trained == [] and again.reused == ["customer-100", "customer-50"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("trials/*/trained.json")} == trained_files
    assert {p: p.stat().st_mtime_ns for p in out.glob("trials/*/run/final/*")} == finals
    assert [t["evaluated_at"] for t in again.trials] == [t["evaluated_at"] for t in first.trials]
    assert len(json.loads((out / "mlflow.json").read_text())["children"]) == 2  # no duplicate children

    # one more share: only the new trial trains
    third = search(run_yaml, search_files, out, percents=[100, 50, 75])
    assert third.trained == ["customer-75"] and third.reused == ["customer-100", "customer-50"]

    # the recommended config is a valid run config for the full budget
    result = CliRunner().invoke(app, ["train", "--config", rec["config"], "--dry-run"])
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(Path(rec["config"]).read_text())
    assert written["overrides"]["max_steps"] == 6  # the config's budget, not the proxy's
    assert written["data_path"] == search_files["train"]
    percent = next(t for t in data["trials"] if t["name"] == rec["trial"])["customer_data_percent"]
    assert written["data_mixing_enabled"] is (percent < 100)


def test_a_killed_trial_starts_again_from_a_clean_folder(run_yaml, search_files, tmp_path):
    out = tmp_path / "search"
    from mixforge.config import load_config
    from mixforge.search.trials import plan_trial

    plan = plan_trial(load_config(run_yaml), customer_percent=100, steps=3, search_dir=out, tracking_uri="x")
    plan.run_dir.mkdir(parents=True)
    (plan.run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')  # a trial killed at step 1
    result = search(run_yaml, search_files, out, percents=[100])
    rows = [json.loads(line) for line in (plan.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3] and rows[0]["loss"] != 9.0
    assert result.trials[0]["cost"]["steps"] == 3


def test_validate_trains_the_recommendation_at_full_budget(run_yaml, search_files, tmp_path):
    result = search(run_yaml, search_files, tmp_path / "search", percents=[50], validate=True,
                    target_retention=0.01)
    assert result.recommendation["trial"] == "customer-50"
    assert result.recommendation["rule"] == "retention_lower_bound"
    v = result.validation
    assert v["name"] == "full-customer-50" and v["cost"]["steps"] == 6
    assert v["meets_target"] is (v["retention"] >= 0.01)
    saved = json.loads((tmp_path / "search" / "search.json").read_text())
    assert saved["validation"]["name"] == "full-customer-50"


def test_the_cli_runs_the_same_search(run_yaml, search_files, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, [
        "mix", "search", "--config", str(run_yaml), "--percent", "100", "--steps", "2",
        "--general", search_files["general"], "--domain", search_files["test"], "--labels", search_files["labels"],
        "--out", str(out), "--n-resamples", "20", "--target-retention", "0.5"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "search.json").read_text())
    assert [t["name"] for t in data["trials"]] == ["customer-100"] and data["target_retention"] == 0.5
    assert data["recommendation"]["trial"] == "customer-100"


def test_bad_settings_are_refused_together(run_yaml, search_files, tmp_path):
    with pytest.raises(ConfigError) as err:
        search(run_yaml, search_files, tmp_path, percents=[0, 50], target_retention=0, weights_trials=-1)
    assert len(err.value.problems) == 3
