"""FSDP2 on CPU (gloo, two processes, tiny model): the same losses as DDP, sharded checkpoints that survive a
SIGKILL mid-run and resume (also as one process: DCP reshards), and a final folder that
`AutoModelForCausalLM.from_pretrained` loads. Full fine-tuning and LoRA. And QLoRA without CUDA: refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from mixforge.config import TorchrunRuntime
from mixforge.runtime import launch

HERE = Path(__file__).parent
STEPS, KILL_AT = 6, 4
# Same records, same global loss normalization; FSDP reduce-scatters where DDP all-reduces, so only the order of
# float sums differs. The bound is 1e-3 relative.
LOSS_RTOL = 1e-3


@pytest.fixture
def toy_sft(tmp_path_factory) -> str:
    words, labels = ["refund", "late", "password"], ["Billing > Refund", "Delivery > Late", "Account > Login"]
    rows = [{"id": f"s{i}", "messages": [{"role": "user", "content": f"Feedback {i}: my {words[i % 3]} issue"},
                                         {"role": "assistant", "content": labels[i % 3]}]} for i in range(48)]
    path = tmp_path_factory.mktemp("toy") / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _config(model_dir, data, out, method, **over):
    from mixforge.config import RunConfig, parse_overrides

    overrides = {"max_steps": STEPS, "global_batch_size": 8, "micro_batch_size": 2, "learning_rate": 1e-2,
                 "lora_rank": 8, "save_every": 2, "keep_checkpoints": 3, "loss_chunk_size": 16, **over}
    return RunConfig(model=str(model_dir), method=method, data_path=data, output_path=str(out), job_name="fsdp",
                     mixing={"customer_data_percent": 50, "general_data": "embedded", "categories": {"math": 100}},
                     overrides=parse_overrides(overrides), tracking={"enabled": False})


def _losses(out) -> dict[int, float]:
    """step -> loss, the last attempt's value where a step was trained twice (before a kill, then resumed)."""
    rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("method", ["sft_full", "sft_lora"])
def test_fsdp_matches_ddp_resumes_after_a_kill_and_saves_a_plain_model(tiny_model_dir, toy_sft, tmp_path, method,
                                                                       monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("MIXFORGE_TEST_KILL_AT", str(KILL_AT))
    ddp_out, fsdp_out = tmp_path / "ddp", tmp_path / "fsdp"
    # the two launches run side by side (each two processes, one thread per process)
    ddp = launch(_config(tiny_model_dir, toy_sft, ddp_out, method), TorchrunRuntime(nproc_per_node=2))
    fsdp = launch(_config(tiny_model_dir, toy_sft, fsdp_out, method),
                  TorchrunRuntime(nproc_per_node=2, strategy="fsdp", entry="kill_after_checkpoint_entry"))

    # the FSDP run dies by SIGKILL right after its step-4 checkpoint: no clean stop, no final save
    assert fsdp.wait(timeout=300) == "failed", fsdp.logs(40)
    assert (fsdp_out / "killed-rank-0").exists() and not (fsdp_out / "final").exists()
    fsdp.kill_leftovers()
    sharded = fsdp_out / "checkpoints" / f"step-{KILL_AT:06d}"
    assert (sharded / "state.json").exists() and (sharded / "sharded" / ".metadata").exists()
    assert sorted(p.name for p in sharded.glob("rng-*.pt")) == ["rng-00000.pt", "rng-00001.pt"]
    kept = tmp_path / "kept-checkpoint"  # for the one-process resume below
    shutil.copytree(sharded, kept)
    fsdp.resume()  # the recipe continues from the newest complete checkpoint
    assert fsdp.wait(timeout=300) == "succeeded", fsdp.logs(40)
    assert fsdp.result["steps"] == STEPS
    assert ddp.wait(timeout=300) == "succeeded", ddp.logs(40)

    a, b = _losses(ddp_out), _losses(fsdp_out)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    assert [b[s] for s in a] == pytest.approx([a[s] for s in a], rel=LOSS_RTOL), (a, b)
    assert a[STEPS] < a[1]  # it learns

    # the final folder is a plain Hugging Face model (or adapter) with the same weights as DDP's
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[1, 5, 9, 14, 20, 31]])
    with torch.no_grad():
        got = AutoModelForCausalLM.from_pretrained(fsdp_out / "final").eval()(ids).logits
        want = AutoModelForCausalLM.from_pretrained(ddp_out / "final").eval()(ids).logits
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)
    if method == "sft_lora":
        assert (fsdp_out / "final" / "adapter_model.safetensors").exists()
        assert not (fsdp_out / "final" / "model.safetensors").exists()
    else:
        config = json.loads((fsdp_out / "final" / "config.json").read_text())
        assert config["architectures"] == ["LlamaForCausalLM"]

    # resume the 2-process sharded checkpoint as ONE process: DCP reshards; steps 5-6 repeat the same losses
    if method == "sft_full":
        from mixforge.train.recipe import run

        one = tmp_path / "one"
        shutil.copytree(kept, one / "checkpoints" / kept.name.replace("kept-checkpoint", f"step-{KILL_AT:06d}"))
        shutil.copy(fsdp_out / "mix_manifest.json", one / "mix_manifest.json")
        cfg = _config(tiny_model_dir, toy_sft, one, method).model_copy(
            update={"runtime": TorchrunRuntime(nproc_per_node=1, strategy="fsdp")})
        assert run(cfg, show_progress=False).steps == STEPS
        c = _losses(one)
        assert sorted(c) == [KILL_AT + 1, STEPS]
        assert [c[s] for s in c] == pytest.approx([b[s] for s in c], rel=LOSS_RTOL)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_qlora_without_cuda_is_one_red_line_naming_cuda(tiny_model_dir, toy_sft, tmp_path, monkeypatch, capsys):
    import sys

    from typer.testing import CliRunner

    from mixforge.cli.app import app, main
    from mixforge.errors import ConfigError

    config = tmp_path / "run.yaml"
    config.write_text(f"model: {tiny_model_dir}\nmethod: sft_lora\ndata_path: {toy_sft}\n"
                      f"output_path: {tmp_path / 'out'}\ntracking: {{enabled: false}}\n"
                      "overrides: {max_steps: 1, quantization: 4bit}\n")
    result = CliRunner().invoke(app, ["train", "--config", str(config)])  # the command raises a ConfigError ...
    assert isinstance(result.exception, ConfigError) and "needs a CUDA GPU" in str(result.exception)
    monkeypatch.setattr(sys, "argv", ["mixforge", "train", "--config", str(config)])
    with pytest.raises(SystemExit) as info:  # ... which the CLI's error boundary shows as one red line
        main()
    err = capsys.readouterr().err
    assert info.value.code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == [
        "error: overrides.quantization: '4bit' (QLoRA through bitsandbytes) needs a CUDA GPU, and none is visible "
        "here; use quantization='none' on CPU"]
    assert not (tmp_path / "out" / "checkpoints").exists()  # refused before anything loaded or trained
    # launching it on torchrun is refused the same way, before any process starts
    from mixforge.config import load_config

    with pytest.raises(ConfigError, match="CUDA"):
        launch(load_config(config), TorchrunRuntime(nproc_per_node=2))
    # and a quantized base without LoRA is a config error wherever it runs
    config.write_text(config.read_text().replace("method: sft_lora", "method: sft_full"))
    with pytest.raises(ConfigError, match="needs a LoRA method"):
        load_config(config)
