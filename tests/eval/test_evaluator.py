"""The seed-shaped snippet on a tiny preset, the result cache, adapters, generative QA."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ANSWERS

import mixforge.eval.evaluator as evaluator_module
from mixforge.eval.cache import checkpoint_fingerprint
from mixforge.eval.checkpoint import load_checkpoint
from mixforge.eval.evaluator import evaluate
from mixforge.eval.tasks import EvalResult, EvalTask


def test_the_issue_snippet_runs_on_a_tiny_preset(answer_b_model, task_files, capsys):
    from mixforge import EvalTask, Evaluator

    ev = Evaluator(model=str(answer_b_model))  # a tiny model trained to answer B: its accuracy is known
    result = ev.evaluate([
        EvalTask.multiple_choice("general", path=str(task_files["mc"]), shots=0),
        EvalTask.classification("domain", path=str(task_files["cls"]), labels=str(task_files["labels"])),
    ])
    print(result.table())
    table = capsys.readouterr().out
    assert "general" in table and "macro_f1" in table
    assert result["general"].metrics["acc"] == ANSWERS.count("B") / len(ANSWERS)
    assert len(result["domain"].examples) == 6


def test_results_are_cached_and_a_second_run_loads_no_model(answer_b_model, task_files, tmp_path, monkeypatch):
    tasks = [EvalTask.multiple_choice("general", path=str(task_files["mc"]))]
    first = evaluate(str(answer_b_model), tasks, cache_dir=tmp_path, show_progress=False)
    assert not first["general"].cached

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded although every result is cached")

    monkeypatch.setattr(evaluator_module, "load_checkpoint", no_loading)
    second = evaluate(str(answer_b_model), tasks, cache_dir=tmp_path, show_progress=False)
    assert second["general"].cached
    assert second["general"].examples == first["general"].examples
    # another setting is another key: it needs the model
    with pytest.raises(AssertionError, match="was loaded"):
        evaluate(str(answer_b_model), [EvalTask.multiple_choice("general", path=str(task_files["mc"]), limit=3)],
                 cache_dir=tmp_path, show_progress=False)


def test_fingerprint_follows_the_weights(tiny_model_dir, answer_b_model, tmp_path):
    a = checkpoint_fingerprint(str(tiny_model_dir), cache_dir=tmp_path)
    assert a == checkpoint_fingerprint(str(tiny_model_dir), cache_dir=tmp_path)
    assert a != checkpoint_fingerprint(str(answer_b_model), cache_dir=tmp_path)


def test_base_plus_adapter_equals_the_merged_model(tiny_model_dir, task_files, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir)
    merged_dir = tmp_path / "merged"
    peft_model.merge_and_unload().save_pretrained(merged_dir)
    load_checkpoint(str(tiny_model_dir)).tokenizer.save_pretrained(merged_dir)

    task = [EvalTask.multiple_choice("general", path=str(task_files["mc"]))]
    via_dir = evaluate(str(adapter_dir), task, cache_dir=tmp_path / "c", show_progress=False)
    via_pair = evaluate(str(tiny_model_dir), task, adapter=str(adapter_dir), cache_dir=tmp_path / "c",
                        show_progress=False)
    merged = evaluate(str(merged_dir), task, cache_dir=tmp_path / "c", show_progress=False)
    plain = evaluate(str(tiny_model_dir), task, cache_dir=tmp_path / "c", show_progress=False)
    assert via_dir.fingerprint == via_pair.fingerprint != plain.fingerprint
    for a, b in zip(via_dir["general"].examples, merged["general"].examples, strict=True):
        assert a["logliks"] == pytest.approx(b["logliks"], abs=1e-4)
    assert any(a["logliks"] != pytest.approx(b["logliks"], abs=1e-3)
               for a, b in zip(via_dir["general"].examples, plain["general"].examples, strict=True))


def test_generative_exact_match_and_f1(answer_b_model, task_files):
    result = evaluate(str(answer_b_model), [EvalTask.generative("qa", path=str(task_files["qa"]), max_new_tokens=6)],
                      use_cache=False, show_progress=False)["qa"]
    from mixforge.eval.metrics import exact_match, token_f1

    for e in result.examples:
        assert e["exact_match"] == exact_match(e["pred"], e["answers"])
        assert e["f1"] == token_f1(e["pred"], e["answers"])
    assert result.metrics["f1"] == pytest.approx(sum(e["f1"] for e in result.examples) / 2)


def test_results_round_trip_through_json(answer_b_model, task_files, tmp_path):
    result = evaluate(str(answer_b_model), [EvalTask.multiple_choice("general", path=str(task_files["mc"]))],
                      cache_dir=tmp_path, show_progress=False)
    loaded = EvalResult.load(result.save(tmp_path / "r.json"))
    assert loaded["general"].metrics == {"acc": ANSWERS.count("B") / 12, "acc_norm": ANSWERS.count("B") / 12}
    assert loaded["general"].examples == result["general"].examples


def test_task_validation_names_the_field():
    from mixforge.errors import ConfigError

    with pytest.raises(ConfigError, match="shots"):
        EvalTask.classification("d", path="x.jsonl", shots=2)
    with pytest.raises(ConfigError, match="shots"):
        EvalTask.multiple_choice("g", path="x.jsonl", shots=-1)


def test_a_hub_dataset_offline_is_one_clear_error(tiny_model_dir):
    from mixforge.errors import DataError

    with pytest.raises(DataError, match="cannot load hub dataset"):
        evaluate(str(tiny_model_dir), [EvalTask.multiple_choice("mmlu", path="cais/mmlu", subset="all", limit=5)],
                 use_cache=False, show_progress=False)
