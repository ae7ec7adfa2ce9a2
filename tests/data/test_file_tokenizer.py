"""`data prepare` reads a local model folder's tokenizer files without importing torch, and sees exactly what
AutoTokenizer and `model_info` see: the same renders, token ids, special tokens, role markers and limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from mixforge.data.validate import FileTokenizer, read_model_files
from mixforge.models.registry import model_info, role_markers, special_tokens

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
     {"role": "user", "content": "q2"}],
]


def _render(tokenizer, conversation, generation: bool) -> str:
    try:
        return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=generation)
    except Exception as exc:  # noqa: BLE001 - a template's refusal must be the same refusal
        return type(exc).__name__


def test_file_tokenizer_agrees_with_autotokenizer_on_every_zoo_family(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "templates"))
    from zoo import ZOO_FAMILIES, build_zoo_tokenizer

    for family in ZOO_FAMILIES:
        folder = build_zoo_tokenizer(family, tmp_path / family)
        full, light = AutoTokenizer.from_pretrained(folder), FileTokenizer.load(folder)
        for conversation in CONVERSATIONS:
            for generation in (False, True):
                assert _render(light, conversation, generation) == _render(full, conversation, generation), family
        assert light.apply_chat_template(CONVERSATIONS) == full.apply_chat_template(CONVERSATIONS, tokenize=False)
        assert special_tokens(light) == special_tokens(full), family
        assert role_markers(light) == role_markers(full), family
        text = "Hello world, <|im_end|> 12345"
        assert light.backend_tokenizer.encode(text).ids == full.backend_tokenizer.encode(text).ids


def test_model_files_give_the_same_info_as_model_info(tiny_model_dir):
    info, _ = read_model_files(str(tiny_model_dir))
    want = model_info(str(tiny_model_dir), with_lora_targets=False)
    assert (info.reserved_strings, info.max_seq_len, info.role_markers, info.eos_token, info.pad_token) == \
        (want.reserved_strings, want.max_seq_len, want.role_markers, want.eos_token, want.pad_token)


@pytest.mark.slow
def test_reading_model_files_imports_no_torch(tiny_model_dir):
    code = ("import sys; from mixforge.data.validate import read_model_files; "
            f"read_model_files({str(tiny_model_dir)!r}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
