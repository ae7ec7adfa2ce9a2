"""Category weights with Optuna: the default weights are the first trial (and reuse the sweep's trial of the
same mix), every trial's percents sum to 100, and a rerun asks the same mixes again and trains nothing."""

from __future__ import annotations

import math

import pytest
import yaml

from mixforge.search.mix_search import mix_search

pytest.importorskip("optuna")
pytestmark = pytest.mark.slow


def test_weight_trials_start_from_the_defaults_and_are_reused(run_yaml, search_files, tmp_path):
    data = yaml.safe_load(run_yaml.read_text())
    data["mixing"]["categories"] = {"math": 50, "rai": 50}
    run_yaml.write_text(yaml.safe_dump(data))
    kw = dict(percents=[50], steps=2, general=search_files["general"], domain=search_files["test"],
              labels=search_files["labels"], out=tmp_path / "s", n_resamples=20, weights_trials=3,
              show_progress=False)
    first = mix_search(run_yaml, **kw)
    names = [t["name"] for t in first.trials]
    # the study's first trial is the default weights: the sweep's own trial, trained once and reused
    assert names[0] == "customer-50" and len(names) == 3 and first.trained == names
    weights = [t for t in first.trials if t["weights_search"]]
    assert [t["name"] for t in weights] == names[1:]
    assert first.trials[0]["mix"]["categories"] == {"math": 50.0, "rai": 50.0}
    for t in weights:
        assert t["customer_data_percent"] == 50 and math.fsum(t["mix"]["categories"].values()) == pytest.approx(100)
    assert len({tuple(sorted(t["mix"]["categories"].items())) for t in first.trials}) == 3  # three different mixes

    again = mix_search(run_yaml, **kw)
    assert again.trained == [] and [t["name"] for t in again.trials] == names
