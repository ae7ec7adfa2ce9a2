"""The shipped base model `mixforge-tiny-base`: a valid Hugging Face directory with a chat template, and scores
that the benchmark reproduces."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def model_dir(assets):
    path = assets / "models" / "mixforge-tiny-base"
    assert (path / "config.json").exists(), (
        "build it: python scripts/pretrain_tiny_base.py (see assets/README.md)"
    )
    return path


@pytest.fixture(scope="module")
def loaded(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def scores(model_dir) -> dict:
    return json.loads((model_dir / "scores.json").read_text(encoding="utf-8"))


def test_is_a_llama_of_a_few_million_parameters_in_safetensors(model_dir, loaded):
    from mixforge.models.tiny import parameter_count

    model, tokenizer = loaded
    assert model.config.model_type == "llama"
    assert (model_dir / "model.safetensors").exists() and not list(model_dir.glob("*.bin"))
    assert 1_000_000 < parameter_count(model) < 10_000_000
    assert model.config.vocab_size == len(tokenizer)


def test_chat_template_and_answer_mask(loaded):
    _, tokenizer = loaded
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<|bos|>") and prompt.endswith("<|assistant|>\n")
    enc = tokenizer.apply_chat_template(
        [*chat, {"role": "assistant", "content": "Paris"}],
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    answer = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(answer) == "Paris<|end|>"


def test_tokenizer_knows_the_domain_words(loaded):
    _, tokenizer = loaded
    for word in (" refund", " delivery", " subscription", " warranty"):
        assert len(tokenizer.tokenize(word)) <= 2, (word, tokenizer.tokenize(word))


def test_scores_are_recorded_and_far_above_chance(scores):
    trained, untrained = scores["trained"], scores["untrained"]
    assert scores["general_accuracy"] == trained["acc_norm"]
    assert trained["questions"] == untrained["questions"] == 480
    assert untrained["acc_norm"] < 0.35  # four choices: chance is 0.25
    assert trained["acc_norm"] >= 0.7 and trained["acc_norm"] > untrained["acc_norm"] + 0.3


def test_recorded_scores_reproduce(loaded, scores, pretrain_script, assets, jsonl):
    model, tokenizer = loaded
    questions = jsonl(assets / "benchmark" / "general_mc.jsonl")
    result = pretrain_script.score_benchmark(model, tokenizer, questions)
    assert result["acc"] == pytest.approx(
        scores["trained"]["acc"], abs=0.005
    )  # near-ties may flip across threads
    assert result["acc_norm"] == pytest.approx(scores["trained"]["acc_norm"], abs=0.005)


def test_greedy_answers_a_heldout_question(loaded, assets, jsonl):
    import torch

    model, tokenizer = loaded
    rows = jsonl(assets / "general" / "rai" / "heldout.jsonl")
    harmful = next(
        r for r in rows if "Sorry" in r["messages"][1]["content"] or "won't" in r["messages"][1]["content"]
    )
    enc = tokenizer.apply_chat_template(
        harmful["messages"][:1], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=24, do_sample=False)
    reply = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "help" in reply and ("can't" in reply or "won't" in reply), reply
