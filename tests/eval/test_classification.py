"""Classification by constrained generation: hand-computed F1 on a model that always says "billing", the label
trie, normalization, a 1,000-label taxonomy."""

from __future__ import annotations

import pytest
from conftest import LABELS, cls_rows, write_jsonl

from mixforge.errors import DataError
from mixforge.eval.checkpoint import load_checkpoint
from mixforge.eval.classification import LabelTrie, build_trie, predict_labels
from mixforge.eval.evaluator import evaluate_task
from mixforge.eval.tasks import EvalTask


def test_always_billing_model_gives_hand_computed_f1(answer_b_model, task_files):
    ckpt = load_checkpoint(str(answer_b_model))
    task = EvalTask.classification("domain", path=str(task_files["cls"]), labels=str(task_files["labels"]))
    result = evaluate_task(ckpt, task)
    assert [e["pred"] for e in result.examples] == ["billing"] * 6
    # gold after casefold: billing x3, refund x2, shipping x1; every prediction "billing"
    # billing: P 3/6, R 1 -> F1 2/3; refund, shipping: 0
    m = result.metrics
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((2 / 3) / 3)
    assert m["weighted_f1"] == pytest.approx((2 / 3 * 3) / 6)
    assert m["micro_f1"] == pytest.approx(0.5)
    assert result.details["confusions"][0] == {"gold": "refund", "pred": "billing", "count": 2}
    assert result.details["normalization"] == {"mode": "casefold", "gold_labels_changed": 1}  # "Billing "
    assert result.details["constrained"] and result.details["label_set_size"] == len(LABELS)
    assert result.per_example("pred")["c2"] == "billing"


def test_without_normalization_an_unknown_gold_label_is_a_located_error(answer_b_model, task_files):
    ckpt = load_checkpoint(str(answer_b_model))
    task = EvalTask.classification("domain", path=str(task_files["cls"]), labels=str(task_files["labels"]),
                                   normalize="none")
    with pytest.raises(DataError) as err:
        evaluate_task(ckpt, task)
    assert err.value.row == 2 and err.value.field == "label"  # "Billing " is not "billing"


def test_labels_that_collide_after_normalization_are_rejected(answer_b_model, tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", cls_rows(["billing"]))
    task = EvalTask.classification("d", path=str(path), labels=["billing", "Billing"])
    with pytest.raises(DataError, match="equal after casefold"):
        evaluate_task(load_checkpoint(str(answer_b_model)), task)


def test_unconstrained_generation_uses_the_decoded_text(answer_b_model, task_files):
    ckpt = load_checkpoint(str(answer_b_model))
    result = evaluate_task(ckpt, EvalTask.classification("domain", path=str(task_files["cls"]), max_new_tokens=8))
    assert not result.details["constrained"]
    assert [e["pred"] for e in result.examples] == ["billing"] * 6


def test_trie_allows_only_label_continuations():
    trie = LabelTrie({(5, 6, 0): "ab", (5, 0): "a", (7, 0): "c"}, stop_id=0)
    assert sorted(trie.allowed([])) == [5, 7]
    assert sorted(trie.allowed([5])) == [0, 6]  # "a" may end here or continue to "ab"
    assert trie.allowed([5, 6]) == [0]
    assert trie.allowed([5, 0]) == [0] and trie.allowed([9]) == [0]
    assert trie.label_of([5, 6, 0]) == "ab" and trie.label_of([5, 6]) is None


def test_a_thousand_label_taxonomy_decodes_to_valid_labels_quickly(tiny_model_dir):
    ckpt = load_checkpoint(str(tiny_model_dir))
    labels = [f"category {i:04d} / leaf {i % 37}" for i in range(1000)]
    trie = build_trie(ckpt.tokenizer, labels, ckpt.tokenizer.eos_token_id)
    assert len(trie.labels) == 1000
    prompts = [[{"role": "user", "content": f"Classify ticket {i}"}] for i in range(16)]
    forwards = []  # the cost, counted instead of timed: one forward pass of the batch per decoded token
    hook = ckpt.model.register_forward_hook(lambda module, args, output: forwards.append(1))
    try:
        preds = predict_labels(ckpt.model, ckpt.tokenizer, prompts, labels=labels, batch_size=16)
    finally:
        hook.remove()
    assert len(preds) == 16 and set(preds) <= set(labels)
    assert 1 <= len(forwards) <= trie.depth < 40  # not one pass per label: 1000 labels cost a label's length


def test_gold_from_assistant_turn_and_text_records(tmp_path, answer_b_model):
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": "x", "text": "Classify: refund now", "label": "refund"},
                                              *cls_rows(["shipping"])])
    result = evaluate_task(load_checkpoint(str(answer_b_model)),
                           EvalTask.classification("d", path=str(path), labels=LABELS))
    assert [e["gold"] for e in result.examples] == ["refund", "shipping"]


def test_text_field_reads_raw_records(answer_b_model, tmp_path):
    path = write_jsonl(tmp_path / "raw.jsonl", [{"id": "f1", "feedback": "Classify: my bill", "label": "Billing"},
                                                {"id": "f2", "feedback": "Classify: lost parcel", "label": "shipping"}])
    task = EvalTask.classification("d", path=str(path), labels=LABELS, text_field="feedback")
    result = evaluate_task(load_checkpoint(str(answer_b_model)), task)
    assert result.per_example("pred") == {"f1": "billing", "f2": "billing"}
    assert result.metrics["accuracy"] == 0.5
    with pytest.raises(DataError) as err:
        evaluate_task(load_checkpoint(str(answer_b_model)),
                      EvalTask.classification("d", path=str(path), labels=LABELS, text_field="comment"))
    assert err.value.row == 1 and err.value.field == "comment"
