"""The tiny-model factory: plain Hugging Face loading, chat template, generation, one optimizer step,
determinism by hash, preset sizes."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mixforge.models.tiny import PRESETS, build_tiny, parameter_count


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_directory_is_a_standard_hugging_face_model(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not any(n.endswith(".bin") for n in names)  # safetensors only
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]


def test_loads_applies_template_generates_and_trains_one_step(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert isinstance(model, torch.nn.Module) and model.config.model_type == "llama"

    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    assert text == "<|bos|><|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n"
    # the role markers are single special tokens, not byte pieces
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for special in ("<|bos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"):
        assert tokenizer.convert_tokens_to_ids(special) in ids

    enc = tokenizer.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True,
                                        return_tensors="pt")
    mask = enc["assistant_masks"][0].bool()
    assert tokenizer.decode(enc["input_ids"][0][mask]) == "Hello<|end|>"  # loss covers the answer + its end

    prompt = tokenizer.apply_chat_template(chat[:2], add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    out = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]

    labels = enc["input_ids"].masked_fill(~mask.unsqueeze(0), -100)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(input_ids=enc["input_ids"], labels=labels).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p)]
    assert "model.layers.0.self_attn.q_proj.weight" in changed


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    a = build_tiny("tiny-100k", seed=7, out_dir=tmp_path / "a")
    b = build_tiny("tiny-100k", seed=7, out_dir=tmp_path / "b")
    c = build_tiny("tiny-100k", seed=8, out_dir=tmp_path / "c")
    assert sha256(a / "model.safetensors") == sha256(b / "model.safetensors")
    assert sha256(a / "tokenizer.json") == sha256(b / "tokenizer.json")
    assert sha256(a / "model.safetensors") != sha256(c / "model.safetensors")


def test_building_does_not_disturb_the_callers_rng(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny("tiny-100k", seed=1, out_dir=tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("preset", "low", "high"), [("tiny-100k", 60_000, 150_000), ("tiny-1m", 0.8e6, 2e6)])
def test_preset_sizes(tmp_path, preset, low, high):
    path = build_tiny(preset, seed=0, out_dir=tmp_path / preset)
    assert low <= parameter_count(AutoModelForCausalLM.from_pretrained(path)) <= high


def test_existing_directory_is_not_overwritten_silently(tmp_path):
    from mixforge.errors import ModelError

    build_tiny("tiny-100k", out_dir=tmp_path / "m")
    with pytest.raises(ModelError, match="exists"):
        build_tiny("tiny-100k", out_dir=tmp_path / "m")


def test_unknown_preset_lists_the_known_ones(tmp_path):
    from mixforge.errors import ModelError

    with pytest.raises(ModelError, match="tiny-chat"):
        build_tiny("tiny-3m", out_dir=tmp_path / "m")


def test_all_presets_are_declared_between_100k_and_20m_parameters():
    # rough count from the declared sizes (tied embeddings): keeps the table honest without building all
    for name, p in PRESETS.items():
        kv = p.hidden_size // p.num_attention_heads * p.num_key_value_heads
        layer = 2 * p.hidden_size * p.hidden_size + 2 * p.hidden_size * kv + 3 * p.hidden_size * p.intermediate_size
        total = p.vocab_size * p.hidden_size + p.num_hidden_layers * layer
        assert 80_000 <= total <= 25_000_000, name
