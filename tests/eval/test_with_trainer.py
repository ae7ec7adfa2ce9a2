"""A run written by the training recipe (LoRA adapter in runs/NAME/final, metrics.jsonl and mix_manifest.json
in runs/NAME) evaluates as base + adapter and feeds the forgetting report."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from conftest import write_jsonl

pytestmark = pytest.mark.slow

LABELS = ["Billing > Refund", "Delivery > Late", "Account > Login"]
WORDS = ["refund", "late", "password"]


def rows(n: int, offset: int = 0) -> list[dict]:
    return [{"id": f"s{i}", "messages": [{"role": "user", "content": f"Feedback {i}: my {WORDS[i % 3]} issue"},
                                         {"role": "assistant", "content": LABELS[i % 3]}]}
            for i in range(offset, offset + n)]


def test_trained_lora_run_evaluates_and_reports(tiny_model_dir, task_files, tmp_path):
    from mixforge.config import RunConfig, parse_overrides
    from mixforge.eval.evaluator import evaluate, split_adapter
    from mixforge.eval.report import forgetting_report
    from mixforge.eval.tasks import EvalTask
    from mixforge.train.recipe import run

    train = write_jsonl(tmp_path / "train.jsonl", rows(48))
    test = write_jsonl(tmp_path / "test.jsonl", rows(9, offset=100))
    cfg = RunConfig(model=str(tiny_model_dir), method="sft_lora", data_path=str(train),
                    output_path=str(tmp_path / "runs" / "voc"),
                    overrides=parse_overrides({"max_steps": 30, "global_batch_size": 8, "micro_batch_size": 4,
                                               "learning_rate": 3e-2, "lora_rank": 8,
                                               "lr_scheduler": "constant"}),
                    tracking={"enabled": False})
    result = run(cfg, show_progress=False)
    final = result.final_path
    assert split_adapter(final, None) == (str(tiny_model_dir), final)  # the adapter names its base

    tasks = [EvalTask.multiple_choice("general", path=str(task_files["mc"])),
             EvalTask.classification("domain", path=str(test), labels=LABELS)]
    base = evaluate(str(tiny_model_dir), tasks, show_progress=False)
    tuned = evaluate(final, tasks, show_progress=False)
    assert tuned.fingerprint != base.fingerprint
    assert set(tuned["domain"].per_example("pred").values()) <= {label.casefold() for label in LABELS}

    report = forgetting_report({"base": base, "voc": tuned}, out_dir=tmp_path / "report", n_resamples=100)
    row = report.rows[1]
    assert row.metrics_file and row.metrics_file.endswith("metrics.jsonl")
    assert (tmp_path / "runs" / "voc" / "mix_manifest.json").is_file() == (row.manifest is not None)

    class Images(HTMLParser):
        count = 0

        def handle_starttag(self, tag, attrs):
            self.count += tag == "img" and dict(attrs)["src"].startswith("data:image/png;base64,")

    page = Images()
    page.feed(report.html.read_text())
    assert page.count >= 1
    assert json.loads(report.json.read_text())["rows"][1]["run"] == "voc"
