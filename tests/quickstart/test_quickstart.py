"""A shortened quickstart end to end on the shipped base model: checks the report's structure, not its
numbers (a few steps cannot show forgetting)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mixforge.quickstart import quickstart

pytestmark = pytest.mark.slow


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables, self.images = 0, []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))


def test_shortened_quickstart_writes_summary_report_and_mlflow_runs(tmp_path):
    summary = quickstart(output=tmp_path / "qs", steps=4, batch_size=8, eval_limit=24, show=False)
    out = tmp_path / "qs"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    names = [r["name"] for r in summary["runs"]]
    assert names == ["base", "domain-only", "mixed-50"]
    for entry in summary["runs"]:
        for key in ("general_accuracy", "domain_macro_f1", "retention", "domain_gain"):
            assert 0.0 <= entry[key] <= 1.0 or key == "domain_gain"
        assert set(entry["intervals_95"]) == {"general", "domain", "retention", "domain_gain"}
    assert summary["runs"][0]["retention"] == 1.0 and summary["runs"][0]["domain_gain"] == 0.0
    assert summary["runs"][1]["shares"] == {"customer_data_percent": 100.0}
    mixed = summary["runs"][2]["shares"]
    assert mixed["customer_data_percent"] == 50.0 and sum(v for k, v in mixed.items() if k != "customer_data_percent") == pytest.approx(100)

    page = _Html()
    page.feed(Path(summary["report_html"]).read_text())
    assert page.tables >= 1 and page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    # the trainer really mixed: the mixed run's manifest and telemetry are there
    manifest = json.loads((out / "runs" / "mixed-50" / "mix_manifest.json").read_text())
    assert "customer" in json.dumps(manifest)
    rows = [json.loads(r) for r in (out / "runs" / "mixed-50" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["mix/customer/records"] == 4 for r in rows if "loss" in r)
    assert (out / "mlflow.db").exists()
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=summary["mlflow_store"])
    experiment = client.get_experiment_by_name("mixforge-quickstart")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["domain-only", "mixed-50"]
