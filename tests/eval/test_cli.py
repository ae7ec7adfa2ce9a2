"""`mixforge eval | report | generate | chat` through typer's CliRunner on tiny checkpoints."""

from __future__ import annotations

import json

from conftest import ANSWERS
from typer.testing import CliRunner

from mixforge.cli.app import app

runner = CliRunner()


def test_eval_command_writes_results(answer_b_model, task_files, tmp_path):
    out = tmp_path / "results.json"
    res = runner.invoke(app, ["eval", "--model", str(answer_b_model), "--task", f"mc:general={task_files['mc']}",
                              "--task", f"cls:domain={task_files['cls']}", "--labels",
                              f"domain={task_files['labels']}", "--out", str(out)])
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    assert saved["tasks"]["general"]["metrics"]["acc"] == ANSWERS.count("B") / 12
    assert saved["tasks"]["domain"]["metrics"]["macro_f1"] > 0


def test_eval_command_rejects_a_bad_task_spec(answer_b_model):
    from mixforge.errors import ConfigError

    res = runner.invoke(app, ["eval", "--model", str(answer_b_model), "--task", "mcq:general"])
    assert isinstance(res.exception, ConfigError) and "KIND:NAME=PATH" in str(res.exception)


def test_report_command_from_results_files(answer_b_model, tiny_model_dir, task_files, tmp_path):
    for name, model in (("base", tiny_model_dir), ("tuned", answer_b_model)):
        res = runner.invoke(app, ["eval", "--model", str(model), "--task", f"mc:general={task_files['mc']}",
                                  "--task", f"cls:domain={task_files['cls']}", "--labels",
                                  f"domain={task_files['labels']}", "--out", str(tmp_path / f"{name}.json")])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(tmp_path / "base.json"), str(tmp_path / "tuned.json"),
                              "--out", str(tmp_path / "report"), "--n-resamples", "100"])
    assert res.exit_code == 0, res.output
    assert "tuned" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "report.html").is_file()


def test_generate_command(answer_b_model, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "p1", "prompt": "Classify: my bill"}) + "\n"
                       + json.dumps({"messages": [{"role": "user", "content": "Classify: refund please"}]}) + "\n")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["generate", "--model", str(answer_b_model), "--input", str(prompts),
                              "--output", str(out), "--max-new-tokens", "8"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["p1", "p2"]
    assert [r["output"] for r in rows] == ["billing", "billing"]  # what the fixture model was trained to say


def test_chat_command(answer_b_model):
    res = runner.invoke(app, ["chat", "--model", str(answer_b_model), "--max-new-tokens", "8"],
                        input="Classify: my bill\n/reset\nClassify: hello\n/exit\n")
    assert res.exit_code == 0, res.output
    assert res.output.count("model> billing") == 2 and "(conversation reset)" in res.output


def test_report_command_evaluates_checkpoints(answer_b_model, tiny_model_dir, task_files, tmp_path):
    res = runner.invoke(app, ["report", f"base={tiny_model_dir}", str(answer_b_model), "--general",
                              str(task_files["mc"]), "--domain", str(task_files["cls"]), "--labels",
                              str(task_files["labels"]), "--out", str(tmp_path / "rep"), "--n-resamples", "50"])
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert [r["run"] for r in saved["rows"]] == ["base", answer_b_model.name]
    assert saved["rows"][1]["general"] == ANSWERS.count("B") / 12


def test_run_names_come_from_the_run_folder():
    from mixforge.cli.eval import _run_name

    assert _run_name("runs/medical/final") == ("medical", "runs/medical/final")
    assert _run_name("runs/medical/checkpoints/step-000040") == ("medical@step-000040",
                                                                 "runs/medical/checkpoints/step-000040")
    assert _run_name("mixed=runs/x/final") == ("mixed", "runs/x/final")
    assert _run_name("results/base.json") == ("base", "results/base.json")
