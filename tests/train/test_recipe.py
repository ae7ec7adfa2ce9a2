"""The training recipe on the tiny model: every method learns, LoRA leaves the base alone, mixing really
happens, checkpoints resume bit for bit, MLflow holds the run, and bad overrides are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mixforge.config import RunConfig, parse_overrides
from mixforge.errors import ConfigError
from mixforge.train.recipe import run

pytestmark = pytest.mark.slow


def config(tiny_model_dir, data, out, *, method="sft_lora", mixing=None, enabled=False, tracking=False, **over):
    overrides = {"max_steps": 12, "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 1e-2,
                 "lora_rank": 8, **over}
    return RunConfig(model=str(tiny_model_dir), method=method, data_path=data, output_path=str(out),
                     data_mixing_enabled=enabled, mixing=mixing, overrides=parse_overrides(overrides),
                     tracking={"enabled": tracking})


def losses(out) -> list[float]:
    return [r["loss"] for r in map(json.loads, (Path(out) / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


# A randomly initialized tiny model has small, frozen (tied) embeddings, so LoRA moves its logits slowly:
# LoRA runs get more steps and a milder bar than full-rank ones.
@pytest.mark.parametrize(("method", "data", "steps", "lr", "factor"), [
    ("sft_lora", "sft", 30, 3e-2, 0.95), ("sft_full", "sft", 12, 1e-2, 0.8), ("cpt", "text", 12, 1e-2, 0.8),
    ("dpo_lora", "pref", 20, 3e-2, 0.9), ("dpo_full", "pref", 20, 1e-3, 0.8)])
def test_each_method_learns_the_toy_set(tiny_model_dir, toy_data, tmp_path, method, data, steps, lr, factor):
    result = run(config(tiny_model_dir, toy_data[data], tmp_path / method, method=method, learning_rate=lr,
                        max_steps=steps, lr_scheduler="constant"), show_progress=False)
    assert result.status == "succeeded" and result.steps == steps
    curve = losses(tmp_path / method)
    assert sum(curve[-3:]) / 3 < factor * sum(curve[:3]) / 3, curve
    assert Path(result.final_path).is_dir()


def test_lora_leaves_base_weights_untouched_and_trains_the_adapter(tiny_model_dir, toy_data, tmp_path):
    from transformers import AutoModelForCausalLM

    result = run(config(tiny_model_dir, toy_data["sft"], tmp_path / "r"), show_progress=False)
    adapter = load_file(Path(result.final_path) / "adapter_model.safetensors")
    assert any("lora_B" in k for k in adapter) and any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    base = load_file(Path(tiny_model_dir) / "model.safetensors")
    assert not (Path(result.final_path) / "model.safetensors").exists()
    reloaded = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    for name, tensor in base.items():
        assert torch.equal(reloaded[name], tensor), name


def test_mixing_puts_the_asked_share_of_general_data_in_every_step(tiny_model_dir, toy_data, tmp_path):
    mixing = {"customer_data_percent": 25, "general_data": "embedded",
              "categories": {"math": 50, "baseline": 50}}
    run(config(tiny_model_dir, toy_data["sft"], tmp_path / "m", enabled=True, mixing=mixing, max_steps=4),
        show_progress=False)
    rows = [json.loads(r) for r in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert len(steps) == 4
    for r in steps:  # 8 records a step: 2 domain, 3 + 3 general (or 2 + 4, within one record of ideal)
        assert r["mix/customer/records"] == 2
        assert r["mix/math/embedded/records"] + r["mix/baseline/embedded/records"] == 6
        assert abs(r["mix/math/embedded/deviation"]) < 1 and abs(r["mix/baseline/embedded/deviation"]) < 1
    curve = [r for r in rows if "kl_to_base" in r]
    assert curve and {"val_loss/math/embedded", "val_loss/baseline/embedded"} <= set(curve[-1])
    assert curve[-1]["kl_to_base"] > 0


def test_domain_only_runs_still_watch_general_validation_loss_and_kl(tiny_model_dir, toy_data, tmp_path):
    run(config(tiny_model_dir, toy_data["sft"], tmp_path / "d", enabled=False, max_steps=2), show_progress=False)
    rows = [json.loads(r) for r in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert all(r["mix/customer/records"] == 8 for r in steps)  # nothing mixed in
    curve = [r for r in rows if "kl_to_base" in r][-1]
    assert any(k.startswith("val_loss/") and k != "val_loss/customer" for k in curve)


def test_packing_trains_on_the_same_records(tiny_model_dir, toy_data, tmp_path):
    a = run(config(tiny_model_dir, toy_data["sft"], tmp_path / "a", max_steps=3, lr_scheduler="constant"),
            show_progress=False)
    b = run(config(tiny_model_dir, toy_data["sft"], tmp_path / "b", max_steps=3, lr_scheduler="constant",
                   packing=True, max_seq_len=128), show_progress=False)
    la, lb = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert a.status == b.status == "succeeded"
    # same records, same math: the losses agree up to float summation order
    assert la == pytest.approx(lb, rel=2e-4), (la, lb)


def test_unknown_override_is_refused_with_the_nearest_name():
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        parse_overrides({"learnig_rate": 1e-3})
    with pytest.raises(ConfigError, match="multiple of micro_batch_size"):
        parse_overrides({"global_batch_size": 10, "micro_batch_size": 4})


def test_mlflow_store_contains_the_run(tiny_model_dir, toy_data, tmp_path):
    cfg = config(tiny_model_dir, toy_data["sft"], tmp_path / "t", tracking=True, max_steps=5)
    cfg = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"log_every": 2})})
    result = run(cfg, show_progress=False)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{(tmp_path / 't' / 'mlflow.db').resolve()}")
    run_info = client.get_run(result.mlflow_run_id)
    assert run_info.info.status == "FINISHED"
    assert run_info.data.params["config.overrides.learning_rate"] == "0.01"
    history = client.get_metric_history(result.mlflow_run_id, "loss")
    assert [m.step for m in history] == [2, 4, 5]  # every 2nd step and the last; the file keeps every step
    file_losses = losses(tmp_path / "t")
    assert len(file_losses) == 5 and [m.value for m in history] == [file_losses[1], file_losses[3], file_losses[4]]
    assert "mix/customer/records_total" in run_info.data.metrics


def _entry(cfg: RunConfig, path: Path, *, kill_at: int | None = None) -> subprocess.Popen:
    """The entry point in its own process; with `kill_at`, the process SIGKILLs itself right after that step's
    checkpoint (kill_after_checkpoint_entry): a crash at a known step, whatever the machine's load."""
    path.write_text(cfg.model_dump_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    module = "mixforge.train.entry"
    if kill_at is not None:
        here = str(Path(__file__).parent)
        env.update(MIXFORGE_TEST_KILL_AT=str(kill_at),
                   PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
        module = "kill_after_checkpoint_entry"
    return subprocess.Popen([sys.executable, "-m", module, str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_and_resume_ends_with_the_same_weights_bit_for_bit(tiny_model_dir, toy_data, tmp_path):
    common = {"max_steps": 10, "save_every": 2, "lora_dropout": 0.1, "keep_checkpoints": 3}
    mixing = {"customer_data_percent": 50, "general_data": "embedded", "categories": {"math": 100}}
    straight = config(tiny_model_dir, toy_data["sft"], tmp_path / "straight", enabled=True, mixing=mixing, **common)
    killed = config(tiny_model_dir, toy_data["sft"], tmp_path / "killed", enabled=True, mixing=mixing, **common)
    assert _entry(straight, tmp_path / "a.json").wait(timeout=600) == 0

    proc = _entry(killed, tmp_path / "b.json", kill_at=4)
    assert proc.wait(timeout=600) == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert (tmp_path / "killed" / "checkpoints" / "step-000004" / "state.json").exists()
    assert not (tmp_path / "killed" / "final").exists()
    assert _entry(killed, tmp_path / "b.json").wait(timeout=600) == 0  # resumes from the newest checkpoint

    a = load_file(tmp_path / "straight" / "final" / "adapter_model.safetensors")
    b = load_file(tmp_path / "killed" / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    first = json.loads((tmp_path / "straight" / "result.json").read_text())
    assert first["status"] == "succeeded" and first["steps"] == 10
