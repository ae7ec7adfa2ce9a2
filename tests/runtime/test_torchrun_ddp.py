"""Two processes under torchrun (gloo DDP on CPU) train on the same global batches as one process, and their loss
curve agrees with the one-process run, even across a clean stop (SIGTERM through torchrun) and a resume."""

from __future__ import annotations

import pytest
from runtime_helpers import PATIENCE, losses, metric_rows, rank_batches, run_config, wait_for

from mixforge.errors import ConfigError
from mixforge.mix.sampler import MixSampler
from mixforge.mix.trace import trace_step
from mixforge.runtime import TorchrunRuntime, launch
from mixforge.runtime.jobs import get_job
from mixforge.train.recipe import run

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

STEPS = 24
# Same records and the same global loss normalization: only the order of float sums may differ (each rank pads
# and reduces its own half, DDP averages gradients). Measured on this machine: identical floats over 6 steps;
# 1e-4 relative is the stated bound.
LOSS_RTOL = 1e-4


def test_two_ranks_train_the_same_global_batches_as_one_process(tiny_model_dir, sft_data, tmp_path, spy_path,
                                                               monkeypatch):
    # one process, in this process, with the mixer's per-step batches recorded
    one = tmp_path / "one"
    seen: dict[int, list[tuple[str, int]]] = {}
    real_next = MixSampler.next_batch

    def spy(self):
        batch = real_next(self)
        seen[self.step] = [tuple(x) for x in batch]
        return batch

    monkeypatch.setattr(MixSampler, "next_batch", spy)
    assert run(run_config(tiny_model_dir, sft_data, one, max_steps=STEPS), show_progress=False).status == "succeeded"
    monkeypatch.setattr(MixSampler, "next_batch", real_next)

    # two processes through the runtime, each rank recording what it was handed; stopped after a few steps
    # (torchrun forwards the SIGTERM to both ranks: checkpoint, then exit), then resumed to the end
    two = tmp_path / "two"
    job = launch(
        run_config(tiny_model_dir, sft_data, two, max_steps=STEPS), TorchrunRuntime(nproc_per_node=2, entry="record_batches_entry"))
    metrics = two / "metrics.jsonl"
    wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 3, timeout=PATIENCE,
             what="three logged steps", job=job)
    job.stop()
    assert job.wait(timeout=PATIENCE) == "stopped", job.logs(40)
    stopped_at = job.result["steps"]
    assert 3 <= stopped_at < STEPS
    assert (two / "checkpoints" / f"step-{stopped_at:06d}" / "state.json").exists()
    job.resume()
    assert job.wait(timeout=PATIENCE) == "succeeded", job.logs(40)
    assert get_job(job.id).record.status == "succeeded"  # what the registry says, read afresh
    assert job.result["steps"] == STEPS

    for rank in (0, 1):  # each step trained once: the stopped attempt up to its checkpoint, the resumed one after
        lines = (two / "batches" / f"rank-{rank}.jsonl").read_text().splitlines()
        assert len(lines) == STEPS
    ranks = rank_batches(two)
    assert sorted(ranks) == [0, 1]
    assert sorted(seen) == sorted(ranks[0]) == sorted(ranks[1]) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        r0, r1 = ranks[0][step], ranks[1][step]
        assert len(r0) == len(r1) == 4  # an equal, disjoint share of the 8 records of the step
        assert not set(r0) & set(r1)
        assert sorted(r0 + r1) == sorted(seen[step]), step
        # and the run's own trace (manifest + index) agrees with what the ranks trained
        traced = trace_step(two, step)
        assert {(row.source, row.index) for row in traced if row.rank == 1} == set(r1)

    a, b = losses(one), losses(two)
    assert len(a) == len(b) == STEPS
    assert b == pytest.approx(a, rel=LOSS_RTOL), (a, b)
    # the mixer's telemetry (global counts of every source, every step) is the same too
    mix_a = [{k: v for k, v in r.items() if k.startswith("mix/")} for r in metric_rows(one) if "loss" in r]
    mix_b = [{k: v for k, v in r.items() if k.startswith("mix/")} for r in metric_rows(two) if "loss" in r]
    assert mix_a == mix_b and mix_a[0]["mix/customer/records"] == 4


def test_global_batch_must_split_over_the_ranks(tiny_model_dir, sft_data, tmp_path):
    with pytest.raises(ConfigError, match="multiple of the world size"):
        launch(run_config(tiny_model_dir, sft_data, tmp_path / "x"), TorchrunRuntime(nproc_per_node=3))


def test_cli_train_follows_a_two_rank_torchrun_job_to_its_end(tiny_model_dir, sft_data, tmp_path, spy_path):
    """`mixforge train --config` without --detach honours `runtime:`: two processes train (each rank records
    what it was handed), the CLI prints the job's log as it grows and exits with the job's status."""
    import json

    from typer.testing import CliRunner

    from mixforge.cli.app import app

    out = tmp_path / "cli"
    config = tmp_path / "run.yaml"
    config.write_text(f"""# mixforge train --config run.yaml
model: {tiny_model_dir}
method: sft_full
data_path: {sft_data}
output_path: {out}
mixing: {{customer_data_percent: 50, general_data: embedded, categories: {{math: 100}}}}
tracking: {{enabled: false}}
overrides: {{max_steps: 3, global_batch_size: 8, micro_batch_size: 4, learning_rate: 1.0e-2}}
runtime: {{kind: torchrun, nproc_per_node: 2, entry: record_batches_entry}}
""")
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "torch.distributed.run" in result.output and "--nproc_per_node=2" in result.output  # the log, followed
    assert "succeeded after 3 steps" in result.output
    ranks = rank_batches(out)
    assert sorted(ranks) == [0, 1]  # two processes trained
    for step in (1, 2, 3):
        assert len(ranks[0][step]) == len(ranks[1][step]) == 4 and not set(ranks[0][step]) & set(ranks[1][step])
    assert json.loads((out / "result.json").read_text())["steps"] == 3
    saved = json.loads((out / "run_config.json").read_text())
    assert saved["runtime"]["kind"] == "torchrun" and saved["runtime"]["nproc_per_node"] == 2

    # a job that fails: the CLI exits 1 with the job's last log lines (the tiny preset has no such model path)
    config.write_text(config.read_text().replace(f"model: {tiny_model_dir}", f"model: {tmp_path / 'missing'}")
                      .replace(f"output_path: {out}", f"output_path: {tmp_path / 'bad'}"))
    failed = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert failed.exit_code == 1, failed.output
    assert "failed" in failed.output
