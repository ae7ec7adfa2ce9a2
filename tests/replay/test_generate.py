"""generate_replay on tiny models: each mode, the counts, resuming a killed generation, the cache, vLLM's guard."""

from __future__ import annotations

import json

import pytest
from replay_helpers import read_jsonl

from mixforge.errors import ConfigError
from mixforge.replay.generate import generate_replay, load_prompt_pools, split_counts

FAST = {"max_new_tokens": 12, "batch_size": 8, "show_progress": False}
MARKERS = ("<|user|>", "<|end|>", "<|assistant|>", "<|bos|>", "<|pad|>", "<|system|>")


def accounted(result) -> None:
    """kept + dropped == attempted, in the result, the manifest and the files."""
    manifest = json.loads(result.manifest.read_text())
    assert result.kept + sum(result.dropped.values()) == result.attempted
    assert manifest["kept"] + sum(manifest["dropped"].values()) == manifest["attempted"] == result.attempted
    assert sum(len(read_jsonl(p)) for p in result.files.values()) == result.kept
    assert sum(c["attempted"] for c in manifest["per_category"].values()) == result.attempted


def test_prompts_mode_answers_the_bundled_prompts_of_each_category(base_model, tmp_path):
    result = generate_replay(base_model, out_dir=tmp_path / "r", n=10, mode="prompts", categories=["math", "rai"],
                             temperature=0.0, **FAST)
    accounted(result)
    assert result.per_category["math"]["quota"] == 5 and result.per_category["rai"]["quota"] == 5
    pools = load_prompt_pools(None, categories=["math", "rai"])
    for category, path in result.files.items():
        records = read_jsonl(path)
        assert len(records) == result.per_category[category]["kept"]
        for r in records:
            assert set(r) == {"id", "messages", "category"} and r["category"] == category
            assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
            assert [r["messages"][0]] in pools[category]  # a bundled prompt, answered by the model
            assert r["messages"][1]["content"].strip()
            assert not any(m in r["messages"][1]["content"] for m in MARKERS)


def test_batched_greedy_answers_equal_one_prompt_at_a_time(base_model, tmp_path):
    """Left padding and the length-sorted batches change nothing: the same answers as one prompt per call."""
    from mixforge.eval.evaluator import load_checkpoint
    from mixforge.eval.generate import generate_texts

    result = generate_replay(base_model, out_dir=tmp_path / "r", n=12, mode="prompts", categories=["baseline"],
                             temperature=0.0, **FAST)
    records = read_jsonl(result.files["baseline"])
    ckpt = load_checkpoint(base_model)
    for r in records:
        alone = generate_texts(ckpt.model, ckpt.tokenizer, [r["messages"][:1]], max_new_tokens=12, batch_size=1)[0]
        assert alone == r["messages"][1]["content"]


def test_prompts_from_a_file_with_a_column_mapping(base_model, tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text("q,topic,answer\nWhat is the capital of France?,geo,x\nWhat is 2 plus 3?,sums,y\n"
                    "Which city is the capital of Spain?,geo,z\n")
    pools = load_prompt_pools(str(path), mapping={"prompt": "q", "category": "topic"})
    assert pools == {"geo": [[{"role": "user", "content": "What is the capital of France?"}],
                             [{"role": "user", "content": "Which city is the capital of Spain?"}]],
                     "sums": [[{"role": "user", "content": "What is 2 plus 3?"}]]}
    result = generate_replay(base_model, out_dir=tmp_path / "r", n=3, mode="prompts", prompts=str(path),
                             mapping={"prompt": "q", "category": "topic"}, categories={"geo": 2, "sums": 1},
                             temperature=0.0, **FAST)
    accounted(result)
    assert result.attempted == 3  # greedy: each prompt once, never repeated


def test_magpie_writes_complete_user_assistant_records(base_model, tmp_path):
    result = generate_replay(base_model, out_dir=tmp_path / "r", n=8, mode="magpie", temperature=1.0, **FAST)
    accounted(result)
    records = read_jsonl(result.files["general"])
    assert records, "the bundled base writes some complete instructions"
    for r in records:
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        assert all(m["content"].strip() and not any(k in m["content"] for k in MARKERS) for m in r["messages"])


def test_free_mode_writes_text_records(tiny_model_dir, tmp_path):
    result = generate_replay(str(tiny_model_dir), out_dir=tmp_path / "r", n=6, mode="free", temperature=1.0,
                             categories=["cpt"], **FAST)
    accounted(result)
    assert result.record_format == "text"
    records = read_jsonl(result.files["cpt"])
    assert records and all(set(r) == {"id", "text", "category"} and r["text"].strip() for r in records)


def test_split_counts_is_exact_largest_remainder():
    assert split_counts(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert split_counts(2000, {"x": 1000, "y": 1000}) == {"x": 1000, "y": 1000}
    assert split_counts(7, {"a": 2, "b": 5}) == {"a": 2, "b": 5}


class Interrupt(Exception):
    pass


def test_a_killed_generation_resumes_after_its_last_shard(base_model, tmp_path):
    settings = dict(n=20, mode="prompts", categories=["math", "stem"], temperature=0.8, seed=3, shard_size=8,
                    batch_size=4, max_new_tokens=12, show_progress=False)
    whole = generate_replay(base_model, out_dir=tmp_path / "whole", **settings)

    def kill_after_first(index, stats):
        if index == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        generate_replay(base_model, out_dir=tmp_path / "killed", on_shard=kill_after_first, **settings)
    assert (tmp_path / "killed" / "shards" / "shard-00000.done.json").is_file()
    assert not (tmp_path / "killed" / "manifest.json").exists()
    seen = []
    resumed = generate_replay(base_model, out_dir=tmp_path / "killed", on_shard=lambda i, s: seen.append(i), **settings)
    assert seen and seen[0] == 1  # shard 0 was kept, not generated again
    accounted(resumed)
    assert (resumed.kept, resumed.dropped, resumed.attempted) == (whole.kept, whole.dropped, whole.attempted)
    for category in whole.files:
        assert read_jsonl(resumed.files[category]) == read_jsonl(whole.files[category])


def test_the_cache_is_reused_and_invalidated_by_model_or_settings(base_model, tiny_model_dir, tmp_path):
    settings = dict(n=4, mode="prompts", categories=["math"], temperature=0.0, **FAST)
    first = generate_replay(base_model, **settings)  # out_dir None: the cache folder of the key
    calls = []
    again = generate_replay(base_model, on_shard=lambda i, s: calls.append(i), **settings)
    assert again.reused and not calls and again.out_dir == first.out_dir and again.cache_key == first.cache_key
    hotter = generate_replay(base_model, **{**settings, "temperature": 0.5})
    other_model = generate_replay(str(tiny_model_dir), **settings)
    assert len({first.cache_key, hotter.cache_key, other_model.cache_key}) == 3
    assert not hotter.reused and not other_model.reused
    assert first.fingerprint != other_model.fingerprint
    # a named folder that holds another generation is refused, unless overwritten
    with pytest.raises(ConfigError, match="other settings"):
        generate_replay(base_model, out_dir=first.out_dir, **{**settings, "temperature": 0.5})
    replaced = generate_replay(base_model, out_dir=first.out_dir, overwrite=True, **{**settings, "temperature": 0.5})
    assert replaced.cache_key == hotter.cache_key and not replaced.reused


def test_changed_weights_change_the_key(tmp_path, tiny_model_dir):
    import shutil

    from mixforge.models.tiny import build_tiny

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    other = build_tiny("tiny-chat", seed=1, out_dir=tmp_path / "seed1")
    shutil.copy(other / "model.safetensors", copy / "model.safetensors")  # same config, other weights
    settings = dict(n=2, mode="free", temperature=1.0, **FAST)
    assert generate_replay(str(tiny_model_dir), **settings).cache_key != generate_replay(str(copy), **settings).cache_key


def test_vllm_is_import_guarded_with_a_clear_message(base_model, tmp_path):
    from mixforge.replay.backends import choose_backend, vllm_available

    if vllm_available():
        pytest.skip("vllm is installed here")
    assert choose_backend("auto", None) == "transformers"
    with pytest.raises(ImportError, match=r"CUDA.*mixforge\[vllm\]"):
        generate_replay(base_model, out_dir=tmp_path / "r", n=2, mode="free", backend="vllm", **FAST)


def test_bad_settings_are_reported_together(base_model):
    with pytest.raises(ConfigError) as err:
        generate_replay(base_model, n=0, mode="magpie", temperature=-1, prompts="x.jsonl")
    assert len(err.value.problems) == 3
