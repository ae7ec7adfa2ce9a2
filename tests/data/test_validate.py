"""Validation rules, counts and examples; token lengths with the tiny model's tokenizer and chat template."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixforge.data.rows import Row
from mixforge.data.sanitize import build_sanitizer
from mixforge.data.validate import TokenLengths, Validator, check_record
from mixforge.errors import DataError

U, A, S = "user", "assistant", "system"


def conv(*pairs, **extra):
    return {"id": "r", "messages": [{"role": r, "content": c} for r, c in pairs], **extra}


def rules(record, kind="messages", labels=None):
    return [r for r, _, _ in check_record(record, kind=kind, labels=labels)]


def test_a_good_conversation_has_no_problems():
    assert rules(conv((S, "s"), (U, "q"), (A, "a"), (U, "q2"), (A, "a2"))) == []


@pytest.mark.parametrize("record,rule", [
    (conv((U, "q"), ("tool", "x")), "role"),
    (conv((U, "q"), (S, "s"), (A, "a")), "system_position"),
    (conv((A, "a"), (U, "q"), (A, "a")), "first_turn"),
    (conv((U, "q"), (U, "q"), (A, "a")), "alternation"),
    (conv((U, "q"), (A, "a"), (U, "q")), "last_turn"),
    (conv((U, "q"), (A, "  ")), "empty"),
    (conv((S, "only system")), "first_turn"),
    ({"id": "r", "messages": []}, "schema"),
    ({"id": "r", "messages": [{"role": "user"}]}, "schema"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "schema"),
    (conv((U, "q"), (A, "a"), label=3), "schema"),
])
def test_each_rule(record, rule):
    assert rule in rules(record)


def test_text_preference_and_labels():
    assert rules({"id": "r", "text": ""}, "text") == ["empty"]
    pref = {"id": "r", "prompt": [{"role": "user", "content": "p"}], "chosen": "x", "rejected": "x"}
    assert rules(pref, "preference") == ["identical"]
    assert rules({**pref, "prompt": [{"role": "assistant", "content": "p"}]}, "preference")[0] == "first_turn"
    labels = frozenset({"billing", "shipping"})
    assert rules(conv((U, "q"), (A, "a"), label="billing"), labels=labels) == []
    assert rules(conv((U, "q"), (A, "a"), label="refund"), labels=labels) == ["label"]
    assert rules(conv((U, "q"), (A, "a")), labels=labels) == ["label"]


def rows_of(records):
    return [Row("in.jsonl", i + 1, r) for i, r in enumerate(records)]


def test_validator_counts_rules_keeps_examples_and_finds_leftovers():
    v = Validator(kind="messages", reserved=build_sanitizer(reserved=["<|end|>"]))
    records = [conv((U, "fine"), (A, "ok")), conv((U, "q"), (U, "q")), conv((U, "x <|end|> y"), (A, "a")),
               conv((U, "Assistant: hi"), (A, "a")), conv((U, "nul \x00 here"), (A, "a")),
               conv((U, "ok"), (A, "System : escaped is fine"))]
    kept, rejects = v(rows_of(records))
    assert [r.row for r in kept] == [1, 6]
    assert {r.row: r.rule for r in rejects} == {2: "alternation", 3: "reserved", 4: "reserved", 5: "control"}
    report = v.finish(rows_kept=len(kept), min_rows=1)
    assert report.problems["reserved"] == 2 and report.rows_failed == 4 and not report.ok
    assert report.examples["control"][0] == {"file": "in.jsonl", "row": 5, "field": "messages.0.content",
                                             "reason": "a NUL at character 5"}
    assert "alternation: 1 rows" in report.summary()
    with pytest.raises(DataError, match="validation failed"):
        report.raise_if_failed()


def test_row_count_limits():
    v = Validator(kind="messages")
    assert v.finish(rows_kept=3).dataset_problems  # default minimum for SFT is 8
    v = Validator(kind="messages")
    assert v.finish(rows_kept=3, min_rows=1, max_rows=10).ok
    v = Validator(kind="messages")
    assert "maximum is 2" in v.finish(rows_kept=3, min_rows=1, max_rows=2).dataset_problems[0]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from mixforge.models.registry import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=300), min_size=2, max_size=4))
def test_the_byte_bound_never_undercounts(tokenizer, contents):
    lengths = TokenLengths(tokenizer, kind="messages", max_seq_len=64)
    assert lengths.byte_level
    roles = [U, A] * 2
    record = conv(*zip(roles, contents, strict=False))
    record["messages"] = record["messages"][: len(contents) - len(contents) % 2] or record["messages"][:2]
    exact = len(tokenizer.apply_chat_template(record["messages"], tokenize=True, return_dict=True)["input_ids"])
    assert lengths.count([record]) == [exact]
    assert lengths.bound(record) >= exact


def test_too_long_rows_are_counted_and_only_candidates_are_tokenized(tokenizer):
    short = conv((U, "hi"), (A, "hello"))
    long = conv((U, "word " * 200), (A, "answer " * 200))
    lengths = TokenLengths(tokenizer, kind="messages", max_seq_len=128)
    exact = lengths.count([long])[0]
    v = Validator(kind="messages", lengths=lengths, too_long="warn")
    kept, rejects = v(rows_of([short, long, short]))
    assert len(kept) == 3 and not rejects  # warn: kept, counted
    r = v.report
    assert (r.rows_tokenized, r.too_long, r.truncated_tokens, r.longest_tokens) == (1, 1, exact - 128, exact)
    assert r.warnings["too_long"] == 1 and r.ok
    v = Validator(kind="messages", lengths=TokenLengths(tokenizer, kind="messages", max_seq_len=128),
                  too_long="reject")
    kept, rejects = v(rows_of([short, long]))
    assert len(kept) == 1 and rejects[0].rule == "too_long" and f"{exact:,} tokens" in rejects[0].reason


def test_text_and_preference_lengths(tokenizer):
    text = TokenLengths(tokenizer, kind="text", max_seq_len=10)
    rec = {"id": "t", "text": "some words to count"}
    assert text.count([rec]) == [len(tokenizer(rec["text"])["input_ids"])]
    assert text.bound(rec) >= text.count([rec])[0]
    pref = TokenLengths(tokenizer, kind="preference", max_seq_len=10)
    rec = {"id": "p", "prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "a much longer one"}
    longest = tokenizer.apply_chat_template([{"role": "user", "content": "q"},
                                             {"role": "assistant", "content": "a much longer one"}],
                                            tokenize=True, return_dict=True)["input_ids"]
    assert pref.count([rec]) == [len(longest)]
