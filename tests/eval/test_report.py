"""The forgetting report: paired-bootstrap table, plots, manifest links, Markdown and ONE self-contained HTML
file (checked by parsing it), MLflow logging."""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser

import pytest
from conftest import ANSWERS

from mixforge.errors import DataError
from mixforge.eval.evaluator import evaluate
from mixforge.eval.report import compare, forgetting_report
from mixforge.eval.tasks import EvalTask


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "a":
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def results(tiny_model_dir, answer_b_model, task_files, tmp_path_factory):
    """base = untrained tiny-chat; 'medical' = the always-B/billing model, stored as runs/medical/final with
    its training metrics and mixture manifest in runs/medical."""
    run = tmp_path_factory.mktemp("runs") / "medical"
    shutil.copytree(answer_b_model, run / "final")
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 10, "val_loss/domain": 2.0, "val_loss/general": 1.5, "kl_to_base": 0.1},
        {"step": 20, "val_loss/domain": 1.2, "val_loss/general": 1.7, "kl_to_base": 0.3},
        {"step": 30, "train_loss": 1.0},
    ]))
    (run / "mix_manifest.json").write_text(json.dumps({"customer_data_percent": 75, "replay": {"math": 25}}))
    tasks = [EvalTask.multiple_choice("general", path=str(task_files["mc"])),
             EvalTask.classification("domain", path=str(task_files["cls"]), labels=str(task_files["labels"]))]
    return {"base": evaluate(str(tiny_model_dir), tasks, show_progress=False),
            "medical": evaluate(str(run / "final"), tasks, show_progress=False)}


def test_compare_base_row_and_paired_intervals(results):
    rows = compare(results, base="base", n_resamples=300)
    base, medical = rows
    assert base.run == "base" and base.retention == 1.0 and base.domain_gain == 0.0
    assert base.retention_ci == (1.0, 1.0) and base.domain_gain_ci == (0.0, 0.0)  # paired: no noise vs itself
    assert medical.general == pytest.approx(ANSWERS.count("B") / 12)
    assert medical.domain == pytest.approx((2 / 3) / 3)  # macro-F1 of always "billing"
    assert medical.retention == pytest.approx(medical.general / base.general)
    assert medical.domain_gain == pytest.approx(medical.domain - base.domain)
    for value, (low, high) in [(medical.general, medical.general_ci), (medical.retention, medical.retention_ci),
                               (medical.domain_gain, medical.domain_gain_ci)]:
        assert low <= value <= high


def test_report_html_is_self_contained_with_table_and_plots(results, tmp_path):
    report = forgetting_report(results, base="base", out_dir=tmp_path / "report", n_resamples=200)
    page = Page()
    page.feed(report.html.read_text(encoding="utf-8"))
    table = page.tables[0]
    assert table[0][:5] == ["run", "domain macro_f1", "general acc", "retention (general / base)", "domain gain"]
    assert [r[0] for r in table[1:]] == ["base", "medical"]
    assert table[2][2].startswith(f"{ANSWERS.count('B') / 12:.3f} [")
    # three figures (scores, per-source validation loss, KL to base), all embedded PNGs
    assert len(page.images) == 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(link.endswith("mix_manifest.json") for link in page.links)
    html = report.html.read_text(encoding="utf-8")
    assert "customer_data_percent" in html and "src=\"plots/" not in html  # manifest embedded, no file refs
    md = report.markdown.read_text(encoding="utf-8")
    assert "| medical |" in md and "![scores](plots/scores.png)" in md
    assert (tmp_path / "report" / "plots" / "scores.png").is_file()
    assert set(report.plots) == {"scores", "validation_loss", "kl_to_base"}
    assert json.loads(report.json.read_text())["rows"][1]["run"] == "medical"


def test_report_refuses_unpaired_examples(results, task_files, answer_b_model, tmp_path):
    fewer = evaluate(str(answer_b_model), [EvalTask.multiple_choice("general", path=str(task_files["mc"]), limit=5),
                                           EvalTask.classification("domain", path=str(task_files["cls"]),
                                                                   labels=str(task_files["labels"]))],
                     show_progress=False)
    with pytest.raises(DataError, match="other examples"):
        compare({"base": results["base"], "short": fewer}, base="base")


def test_report_is_logged_to_mlflow(results, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_TELEMETRY", "false")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = forgetting_report(results, base="base", out_dir=tmp_path / "r", n_resamples=50, tracking_uri=uri)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(report.mlflow_run_id)
    assert run.data.metrics["report/medical/general"] == pytest.approx(ANSWERS.count("B") / 12)
    names = {a.path for a in client.list_artifacts(report.mlflow_run_id, "forgetting_report")}
    assert "forgetting_report/report.html" in names
