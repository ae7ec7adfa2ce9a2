"""`role_markers`, `ModelInfo.reserved_strings` and `mixforge models info` on every zoo family."""

from __future__ import annotations

import re

from typer.testing import CliRunner
from zoo import FAMILIES, make_zoo_tokenizer

from mixforge.cli.app import app
from mixforge.models.registry import ModelInfo, model_info, role_markers


def test_role_markers_are_the_real_markers(family):
    assert role_markers(make_zoo_tokenizer(family)) == FAMILIES[family].role_markers


def test_a_bos_the_template_never_writes_is_not_cut_from_the_first_marker():
    # SmolLM2 declares bos_token '<|im_start|>'; cutting it left the bare word 'system\n' as the system marker
    # (regression: the old role_markers returned {'system': 'system\n', ...} here)
    markers = role_markers(make_zoo_tokenizer("chatml_default_system"))
    assert markers["system"] == "<|im_start|>system\n"


def test_model_info_reserves_whole_markers_and_special_tokens_never_a_word(family, zoo_model_dir):
    spec = FAMILIES[family]
    info = model_info(zoo_model_dir(family), with_lora_targets=False)
    assert info.role_markers == spec.role_markers
    reserved = set(info.reserved_strings)
    assert {m.strip() for m in spec.role_markers.values()} <= reserved
    assert {*spec.additional_special, *spec.other_special, spec.eos} <= reserved  # Llama 3's headers too
    assert not [s for s in reserved if re.fullmatch(r"[\w\s]*", s)]
    assert info.reserved_strings == sorted(reserved, key=lambda s: (-len(s), s))


def test_reserved_strings_drop_plain_words():
    info = ModelInfo(name="m", path="m", model_type="llama", chat_template=None, special_tokens=["<s>", "end"],
                     role_markers={"system": "system\n", "user": "<|im_start|>user\n", "assistant": "model "},
                     lora_target_modules=[], max_seq_len=8, eos_token=None, pad_token=None)
    assert info.reserved_strings == ["<|im_start|>user", "<s>"]


def test_models_info_shows_the_real_markers(family, zoo_model_dir):
    result = CliRunner().invoke(app, ["models", "info", zoo_model_dir(family)], env={"COLUMNS": "2000"})
    assert result.exit_code == 0, result.output
    for role, marker in FAMILIES[family].role_markers.items():
        assert f"{role}={marker!r}" in result.output
