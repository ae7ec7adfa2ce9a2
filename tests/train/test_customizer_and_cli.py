"""The seed-shaped snippet and the `mixforge train` CLI, on the tiny preset, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mixforge import LocalRuntime, MLflowMonitor, ModelCustomizer, TrainingMethod
from mixforge.cli.app import app
from mixforge.errors import ConfigError

pytestmark = pytest.mark.slow

SEED_MIX = {
    "customer_data_percent": 50, "nova_agents_percent": 1, "nova_baseline_percent": 10,
    "nova_chat_percent": 0.5, "nova_factuality_percent": 0.1, "nova_identity_percent": 1,
    "nova_long-context_percent": 1, "nova_math_percent": 2, "nova_rai_percent": 1,
    "nova_instruction-following_percent": 13, "nova_stem_percent": 10.5, "nova_planning_percent": 10,
}


def test_the_seed_snippet_runs_offline_on_a_tiny_preset(toy_data, tmp_path):
    customizer = ModelCustomizer(
        model="tiny-chat",
        method=TrainingMethod.SFT_LORA,
        infra=LocalRuntime(),
        data_path=toy_data["sft"],
        output_path=str(tmp_path / "runs" / "medical"),
        mlflow_monitor=MLflowMonitor(experiment_name="sft-datamix"),
        data_mixing_enabled=True,
    )
    defaults = customizer.get_data_mixing_config()
    assert defaults["customer_data_percent"] == 50
    assert sum(v for k, v in defaults.items() if k.startswith("nova_")) == pytest.approx(100)
    customizer.set_data_mixing_config({"customer_data_percent": 50, "general_data": "embedded",
                                       "math_percent": 60, "baseline_percent": 40})
    job = customizer.train(job_name="med-lora", overrides={"max_steps": 5, "learning_rate": 1e-4,
                                                           "global_batch_size": 8, "micro_batch_size": 4})
    assert job.status in ("running", "succeeded")  # returned at once
    job.wait(timeout=600)
    assert job.status == "succeeded", job.logs()
    out = Path(job.output_path)
    assert (out / "final" / "adapter_model.safetensors").exists()
    assert (out / "mlflow.db").exists() and (out / "mix_manifest.json").exists()
    steps = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5]
    assert all(r["mix/customer/records"] == 4 for r in steps)


def test_seed_mix_with_categories_the_package_does_not_ship_is_refused_clearly(toy_data, tmp_path):
    customizer = ModelCustomizer(model="tiny-chat", data_path=toy_data["sft"], output_path=str(tmp_path))
    with pytest.raises(ConfigError) as info:
        customizer.set_data_mixing_config({**SEED_MIX, "general_data": "embedded"})
    assert "agents" in str(info.value)


runner = CliRunner()


def test_cli_dry_run_prints_the_resolved_config_and_train_runs(toy_data, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"""# mixforge train --config run.yaml
model: tiny-chat
method: sft_full
data_path: {toy_data['sft']}
output_path: {tmp_path / 'out'}
mixing: {{customer_data_percent: 50, general_data: embedded, categories: {{math: 100}}}}
tracking: {{enabled: false}}
overrides: {{max_steps: 2, global_batch_size: 4, micro_batch_size: 2}}
""")
    dry = runner.invoke(app, ["train", "--config", str(config), "--dry-run", "--set", "learning_rate=3e-4"])
    assert dry.exit_code == 0, dry.output
    shown = json.loads(dry.output)
    assert shown["overrides"]["learning_rate"] == 3e-4 and shown["mixing"]["categories"] == {"math": 100.0}
    assert not (tmp_path / "out").exists()

    bad = runner.invoke(app, ["train", "--config", str(config), "--set", "max_step=3"])
    assert bad.exit_code != 0 and "max_steps" in str(bad.exception or bad.output)

    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "final" / "model.safetensors").exists()  # full-rank: the whole model


def test_merge_writes_a_standalone_model_with_the_adapters_outputs(tiny_model_dir, toy_data, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from mixforge.config import RunConfig, parse_overrides
    from mixforge.train.recipe import run

    cfg = RunConfig(model=str(tiny_model_dir), method="sft_lora", data_path=toy_data["sft"],
                    output_path=str(tmp_path / "r"), data_mixing_enabled=False, tracking={"enabled": False},
                    overrides=parse_overrides({"max_steps": 3, "global_batch_size": 4, "micro_batch_size": 4,
                                               "learning_rate": 3e-2}))
    final = run(cfg, show_progress=False).final_path
    result = runner.invoke(app, ["merge", final, "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), final).eval()
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, with_adapter(ids).logits, atol=1e-5)
    bad = runner.invoke(app, ["merge", str(tiny_model_dir), "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0
