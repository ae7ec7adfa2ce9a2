"""Runs side by side in processes: the plan of processes and threads, a job's result independent of the jobs
beside it (bit for bit against the same job in this process, one thread each), and a failing job that stops
the others and names itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mixforge.config import RunConfig, parse_overrides
from mixforge.eval.tasks import EvalTask
from mixforge.side_by_side import Job, last_step, plan_workers, run_side_by_side


def test_plan_uses_every_core_and_never_more_processes_than_jobs():
    assert plan_workers(3, available=2) == (3, 1)  # 3 arms on 2 cores run at once, not 2 then 1 alone
    assert plan_workers(9, available=2) == (3, 1)
    assert plan_workers(3, available=16) == (3, 5)
    assert plan_workers(1, available=16)[0] == 1  # one job: this process, its own threads
    assert plan_workers(5, available=1)[0] == 1  # one core: one after another
    assert plan_workers(4, 2, available=8) == (2, 4)
    assert plan_workers(2, 1, available=8) == (1, torch.get_num_threads())
    with pytest.raises(ValueError, match="at least 1"):
        plan_workers(2, 0)


def test_last_step_reads_the_last_complete_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert last_step(path) is None
    path.write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n" + json.dumps({"step": 2, "val": 1.0}) + "\n{\"st")
    assert last_step(path) == 2


def _job(name: str, model: str, data: str, out: Path, *, eval_path: str, **over) -> Job:
    overrides = {"max_steps": 3, "global_batch_size": 4, "micro_batch_size": 4, "learning_rate": 1e-2, "seed": 3,
                 **over}
    cfg = RunConfig(model=model, method="sft_full", data_path=data, output_path=str(out / name),
                    overrides=parse_overrides(overrides), tracking={"enabled": False})
    task = EvalTask.classification("domain", path=eval_path, labels=["Billing > Refund", "Delivery > Late",
                                                                      "Account > Login"], limit=6)
    return Job(name, cfg, (task,), str(out / "eval-cache"))


def _losses(run_dir: str) -> list[float]:
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.slow
def test_a_job_gives_the_same_run_beside_others_as_alone(tiny_model_dir, toy_data, tmp_path):
    model, data = str(tiny_model_dir), toy_data["sft"]
    jobs = [_job("a", model, data, tmp_path / "together", eval_path=data),
            _job("b", model, data, tmp_path / "together", eval_path=data, learning_rate=5e-3)]
    together = run_side_by_side(jobs, workers=2, show=False)
    assert [f.name for f in together] == ["a", "b"] and all(f.threads == 1 for f in together)
    alone = run_side_by_side([_job("a", model, data, tmp_path / "alone", eval_path=data)], workers=1, show=False)
    assert torch.get_num_threads() == 1  # the tests' setting: the same thread count as the workers
    assert _losses(together[0].run.output_path) == _losses(alone[0].run.output_path)  # bit for bit
    assert _losses(together[0].run.output_path) != _losses(together[1].run.output_path)  # other lr, other run
    assert together[0].evaluation.tasks["domain"].metrics == alone[0].evaluation.tasks["domain"].metrics


@pytest.mark.slow
def test_a_failing_job_stops_the_others_and_names_itself(tiny_model_dir, toy_data, tmp_path):
    model, data = str(tiny_model_dir), toy_data["sft"]
    jobs = [_job("slow", model, data, tmp_path, eval_path=data, max_steps=400),
            _job("broken", model, str(tmp_path / "missing.jsonl"), tmp_path, eval_path=data)]
    with pytest.raises(RuntimeError, match="run broken failed"):
        run_side_by_side(jobs, workers=2, show=False)
    assert (last_step(tmp_path / "slow" / "metrics.jsonl") or 0) < 400  # stopped, not waited for
