"""general_data: self in a training run: the config, the catalogue's self sources, generation before training
(then the cache), the mixture manifest, and the replay loss kl (0 while the tuned model is the base)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mixforge.config import RunConfig, parse_overrides
from mixforge.errors import ConfigError
from mixforge.mix.config import DataMixingConfig
from mixforge.train.recipe import run

SELF_MIX = {"customer_data_percent": 50, "general_data": "self", "categories": {"math": 50, "rai": 50},
            "self_replay": {"n": 8, "max_new_tokens": 32, "temperature": 0, "batch_size": 8}}


def test_self_config_fills_every_category_with_a_self_source_and_splits_n():
    cfg = DataMixingConfig.from_dict({**SELF_MIX, "categories": {"math": 75, "rai": 25},
                                      "self_replay": {"n": 10}})
    sources = cfg.general_sources()
    assert sorted(sources) == ["math/self", "rai/self"]
    assert all(s.kind == "self" and s.location == "" for s in sources.values())
    assert cfg.self_replay_counts() == {"math": 8, "rai": 2}  # 7.5/2.5: the tie goes to the catalogue's first
    assert cfg.self_replay is not None and cfg.self_replay.mode == "prompts"


def test_prompts_mode_needs_a_pool_and_a_self_source_kind_works_beside_embedded():
    with pytest.raises(ConfigError, match="agents_percent: self-replay in prompts mode"):
        DataMixingConfig.from_dict({"customer_data_percent": 50, "general_data": "self", "categories": {"agents": 100}})
    assert DataMixingConfig.from_dict({"customer_data_percent": 50, "general_data": "self", "categories": {"agents": 100},
                                       "self_replay": {"mode": "magpie"}}).self_replay_counts() == {"agents": 2000}
    cfg = DataMixingConfig.from_dict({"customer_data_percent": 50, "general_data": "embedded",
                                      "categories": {"math": 50, "rai": 50},
                                      "sources": [{"name": "own", "category": "rai", "kind": "self"}]})
    kinds = {name: s.kind for name, s in cfg.general_sources().items()}
    assert kinds == {"math/embedded": "embedded", "rai/embedded": "embedded", "rai/own": "self"}
    assert cfg.self_replay_counts() == {"rai": 2000}


def test_the_mix_package_imports_nothing_of_models_train_or_replay():
    code = ("import sys, mixforge.mix.config, mixforge.mix.catalog, mixforge.mix.manifest, mixforge.mix.sampler; "
            "bad = [m for m in sys.modules if m.startswith(('mixforge.models', 'mixforge.train', 'mixforge.replay'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def domain_data(tmp_path) -> str:
    path = tmp_path / "domain.jsonl"
    rows = [{"id": f"d{i}", "messages": [{"role": "user", "content": f"Ticket {i}: the app crashes on login"},
                                         {"role": "assistant", "content": ["bug", "billing", "login"][i % 3]}]}
            for i in range(24)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def config(model, data, out, mixing, **over) -> RunConfig:
    overrides = {"max_steps": 4, "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 1e-2,
                 "lora_rank": 4, "lr_scheduler": "constant", **over}
    return RunConfig(model=model, method="sft_lora", data_path=data, output_path=str(out), mixing=mixing,
                     overrides=parse_overrides(overrides), tracking={"enabled": False})


def losses(out) -> list[float]:
    rows = map(json.loads, (Path(out) / "metrics.jsonl").read_text().splitlines())
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.slow
def test_a_run_generates_its_replay_first_then_reuses_the_cache(base_model, domain_data, tmp_path):
    first = run(config(base_model, domain_data, tmp_path / "a", SELF_MIX), show_progress=False)
    assert first.status == "succeeded"
    manifest = json.loads((tmp_path / "a" / "mix_manifest.json").read_text())
    replay = manifest["self_replay"]
    assert not replay["reused"] and replay["kept"] + sum(replay["dropped"].values()) == replay["attempted"]
    assert replay["counts"] == {"math": 4, "rai": 4} and replay["generator_fingerprint"]
    for name in ("math/self", "rai/self"):
        assert manifest["sources"][name]["location"] == replay["files"][name.split("/")[0]]
        assert manifest["sources"][name]["num_records"] == 4
    second = run(config(base_model, domain_data, tmp_path / "b", SELF_MIX), show_progress=False)
    assert second.status == "succeeded"
    again = json.loads((tmp_path / "b" / "mix_manifest.json").read_text())["self_replay"]
    assert again["reused"] and again["cache_key"] == replay["cache_key"]


def test_kl_is_zero_while_the_tuned_model_is_the_base_lora_and_full(base_model):
    from peft import LoraConfig, get_peft_model

    from mixforge.models.registry import load_model, load_tokenizer
    from mixforge.train.batching import pad_batch
    from mixforge.train.recipe import base_context
    from mixforge.train.replay_loss import kl_from_logits, kl_to_base_sum
    from mixforge.train.tokenize import tokenize_record

    tok = load_tokenizer(base_model)
    items = [tokenize_record(tok, {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]},
                             max_seq_len=64) for q, a in [("What is 2 plus 2?", "4"), ("Capital of France?", "Paris")]]
    batch = pad_batch(items, pad_id=tok.pad_token_id)
    lora = get_peft_model(load_model(base_model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert kl_to_base_sum(lora, batch, base_model=lora, base=base_context(lora, None)).item() == pytest.approx(0, abs=1e-6)
    full, ref = load_model(base_model), load_model(base_model)
    assert kl_to_base_sum(full, batch, base_model=ref, base=base_context(full, ref)).item() == pytest.approx(0, abs=1e-6)
    with torch.no_grad():
        full.lm_head.weight.mul_(1.5)  # no longer the base: KL(base || tuned) > 0, equal to torch's kl_div
    loss = kl_to_base_sum(full, batch, base_model=ref, base=base_context(full, ref))
    assert loss.item() > 1e-3
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    mask = batch["labels"][:, 1:] != -100
    p, q = ref(**inputs).logits[:, :-1][mask].log_softmax(-1), full(**inputs).logits[:, :-1][mask].log_softmax(-1)
    expected = torch.nn.functional.kl_div(q, p, log_target=True, reduction="sum")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert kl_from_logits(p, p, torch.ones(p.shape[0], dtype=torch.bool)).item() == pytest.approx(0, abs=1e-6)
    # through the loss module (what the recipe calls): the head on the label positions only, the same sum
    from mixforge.train.losses import TokenLoss

    assert kl_to_base_sum(TokenLoss(full), batch, base_model=ref, base=base_context(full, ref)).item() == pytest.approx(
        expected.item(), rel=1e-4)


@pytest.mark.slow
def test_replay_loss_kl_is_zero_on_replay_only_steps_and_a_mixed_run_trains(base_model, domain_data, tmp_path):
    only_replay = {**SELF_MIX, "customer_data_percent": 0}
    result = run(config(base_model, domain_data, tmp_path / "r", only_replay, replay_loss="kl"), show_progress=False)
    assert result.status == "succeeded"
    curve = losses(tmp_path / "r")
    assert abs(curve[0]) < 1e-6 and len(curve) == 4  # step 1: the LoRA model is still the base
    mixed = run(config(base_model, domain_data, tmp_path / "m", SELF_MIX, replay_loss="kl", max_steps=8),
                show_progress=False)
    curve = losses(tmp_path / "m")
    assert mixed.status == "succeeded" and all(x == x for x in curve) and curve[-1] < curve[0]
    assert mixed.metrics["tokens_per_s"] > 0


@pytest.mark.slow
def test_replay_kl_over_every_position_starts_at_zero_and_changes_the_update(base_model, domain_data, tmp_path):
    runs = {}
    for where in ("labels", "all"):
        out = tmp_path / where
        result = run(config(base_model, domain_data, out, SELF_MIX, replay_loss="kl", replay_kl_tokens=where,
                            max_steps=3), show_progress=False)
        assert result.status == "succeeded"
        runs[where] = losses(out)
    # step 1: the tuned model is the base, so the KL is 0 wherever it is measured and the loss is the domain's
    assert runs["all"][0] == pytest.approx(runs["labels"][0], abs=1e-6)
    # later steps measure the replay's KL on different positions (prompt tokens too)
    assert runs["all"][1:] != pytest.approx(runs["labels"][1:], abs=1e-7)
