"""The model registry: presets, local directories and hub ids through one path; what it reads from a model."""

from __future__ import annotations

import pytest

from mixforge.errors import ModelError
from mixforge.models.registry import load_model, load_tokenizer, model_info, resolve


def test_local_directory_and_preset_resolve_to_loadable_directories(tiny_model_dir):
    assert resolve(str(tiny_model_dir)) == str(tiny_model_dir)
    built = resolve("tiny-100k@3")
    assert (built_path := __import__("pathlib").Path(built)).is_dir() and "seed3" in built_path.name
    assert resolve("tiny-100k@3") == built  # built once, then reused


def test_hub_id_goes_to_from_pretrained_and_fails_clearly_offline(monkeypatch):
    assert resolve("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="Qwen/Qwen2.5-0.5B-Instruct") as info:
        load_tokenizer("Qwen/Qwen2.5-0.5B-Instruct")
    assert "tiny preset" in info.value.hint


def test_a_path_that_does_not_exist_is_not_taken_for_a_hub_id(tmp_path):
    with pytest.raises(ModelError, match="not a directory"):
        resolve(str(tmp_path / "missing" / "model"))


def test_model_info_reads_template_specials_markers_targets_and_length(tiny_model_dir):
    info = model_info(str(tiny_model_dir))
    assert info.model_type == "llama"
    assert {"<|bos|>", "<|end|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|system|>"} <= set(info.special_tokens)
    assert info.role_markers == {"system": "<|system|>\n", "user": "<|user|>\n", "assistant": "<|assistant|>\n"}
    assert info.lora_target_modules == ["q_proj", "v_proj"]  # peft's own table for llama
    assert info.max_seq_len == 512
    assert "{% generation %}" in info.chat_template
    assert info.reserved_strings[0] in {"<|assistant|>"}  # longest first


def test_role_markers_of_a_qwen_style_template(tiny_model_dir):
    from transformers import AutoTokenizer

    from mixforge.models.registry import role_markers

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n' }}"
        "{% endfor %}"
    )
    assert role_markers(tok) == {"system": "<|im_start|>system\n", "user": "<|im_start|>user\n",
                                 "assistant": "<|im_start|>assistant\n"}


def test_load_model_uses_safetensors_and_refuses_unknown_precision(tiny_model_dir):
    model = load_model(str(tiny_model_dir))
    assert next(model.parameters()).dtype.is_floating_point
    with pytest.raises(ModelError, match="precision"):
        load_model(str(tiny_model_dir), precision="int3")
