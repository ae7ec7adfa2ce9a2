"""lm-evaluation-harness on mixforge checkpoints, offline, with a task defined on local files: the same
multiple-choice task gives exactly the same accuracy through both tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ANSWERS

from mixforge.eval.checkpoint import load_checkpoint
from mixforge.eval.evaluator import evaluate_task
from mixforge.eval.tasks import EvalTask

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.lmeval


@pytest.mark.parametrize(("answer_format", "chat", "shots", "style"), [
    ("letter", True, 0, "mmlu"), ("letter", False, 2, "mmlu"), ("text", True, 1, "mmlu"), ("text", False, 0, "mmlu"),
    ("text", True, 0, "question")])
def test_mixforge_and_lm_eval_agree_exactly(tiny_model_dir, task_files, tmp_path, answer_format, chat, shots, style):
    from mixforge.eval.lm_eval_adapter import lm_eval_multiple_choice

    ckpt = load_checkpoint(str(tiny_model_dir))
    task = EvalTask.multiple_choice("general", path=str(task_files["mc"]), answer_format=answer_format, chat=chat,
                                    shots=shots, prompt_style=style)
    ours = evaluate_task(ckpt, task)
    theirs = lm_eval_multiple_choice(ckpt, task, work_dir=tmp_path)
    assert theirs.metrics == ours.metrics  # exactly, acc and acc_norm
    assert [e["correct"] for e in theirs.examples] == [e["correct"] for e in ours.examples]
    for a, b in zip(ours.examples, theirs.examples, strict=True):
        assert a["id"] == b["id"]
        assert a["logliks"] == pytest.approx(b["logliks"], abs=1e-4)


def test_always_b_model_through_lm_eval(answer_b_model, task_files, tmp_path):
    from mixforge.eval.lm_eval_adapter import lm_eval_multiple_choice

    ckpt = load_checkpoint(str(answer_b_model))
    result = lm_eval_multiple_choice(ckpt, EvalTask.multiple_choice("general", path=str(task_files["mc"])),
                                     work_dir=tmp_path)
    assert result.metrics["acc"] == ANSWERS.count("B") / len(ANSWERS)


def _harness_accuracy(model_dir, path, limit: int) -> float:
    """Accuracy as the harness scores that YAML, computed here by hand: for each question, the choice whose
    " choice" continuation of "question\nAnswer:" has the highest summed log-probability (no special tokens)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def logp(context: str, continuation: str) -> float:
        whole = tok(context + continuation, add_special_tokens=False).input_ids
        start = len(tok(context, add_special_tokens=False).input_ids)
        with torch.no_grad():
            logits = model(torch.tensor([whole])).logits.log_softmax(-1)[0]
        return sum(logits[i - 1, whole[i]].item() for i in range(start, len(whole)))

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    right = [max(range(len(r["choices"])), key=lambda j, r=r: logp(f"{r['question']}\nAnswer:", " " + r["choices"][j]))
             == "ABCD".index(r["answer"]) for r in rows]
    return sum(right) / len(right)


def test_any_harness_task_from_a_local_yaml(tiny_model_dir, task_files, tmp_path):
    """A hand-written harness task (not exported by mixforge) over a local JSONL runs through run_lm_eval."""
    from mixforge.eval.lm_eval_adapter import run_lm_eval

    (tmp_path / "local_mc.yaml").write_text(yaml.safe_dump({
        "task": "local_mc", "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(task_files["mc"])}}, "test_split": "test",
        "output_type": "multiple_choice", "doc_to_text": "{{question}}\nAnswer:",
        "doc_to_choice": "{{choices}}", "doc_to_target": "{{['A','B','C','D'].index(answer)}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }))
    out = run_lm_eval(str(tiny_model_dir), ["local_mc"], include_path=tmp_path, include_defaults=False, limit=4)
    assert out["results"]["local_mc"]["acc,none"] == pytest.approx(_harness_accuracy(tiny_model_dir, task_files["mc"], 4))
    assert out["n-samples"]["local_mc"]["effective"] == 4


def test_eval_cli_runs_a_local_harness_task(tiny_model_dir, task_files, tmp_path):
    from typer.testing import CliRunner

    from mixforge.cli.app import app
    from mixforge.eval.lm_eval_adapter import export_multiple_choice

    ckpt = load_checkpoint(str(tiny_model_dir))
    name = export_multiple_choice(ckpt.tokenizer, EvalTask.multiple_choice("general", path=str(task_files["mc"])),
                                  tmp_path)
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--lm-eval", name, "--include-path",
                                   str(tmp_path), "--no-harness-tasks"])
    assert res.exit_code == 0, res.output
    ours = evaluate_task(ckpt, EvalTask.multiple_choice("general", path=str(task_files["mc"])))
    assert f"acc,none={ours.metrics['acc']:.4f}" in res.output


def test_evaluator_facade_runs_harness_tasks(tiny_model_dir, task_files, tmp_path):
    from mixforge import Evaluator
    from mixforge.eval.lm_eval_adapter import export_multiple_choice

    ckpt = load_checkpoint(str(tiny_model_dir))
    task = EvalTask.multiple_choice("general", path=str(task_files["mc"]), answer_format="text")
    name = export_multiple_choice(ckpt.tokenizer, task, tmp_path)
    out = Evaluator(str(tiny_model_dir)).lm_eval([name], include_path=tmp_path, include_defaults=False)
    assert out["results"][name]["acc_norm,none"] == evaluate_task(ckpt, task).metrics["acc_norm"]
