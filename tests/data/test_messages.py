"""Mapping and transform: every input shape to its canonical record, clear problems, Bedrock both ways."""

from __future__ import annotations

import pytest

from mixforge.data.mapping import ColumnMapping, infer_mapping, parse_mapping
from mixforge.data.messages import (
    BEDROCK_SCHEMA,
    RowProblem,
    check_shape,
    from_bedrock,
    to_bedrock,
    to_record,
    transform,
)
from mixforge.data.rows import Row
from mixforge.errors import ConfigError

U, A, S = "user", "assistant", "system"


def msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


def test_question_answer_with_system_and_label():
    m = parse_mapping("question=q,answer=a,system=sys,label=lab")
    rec = to_record({"q": "Why?", "a": "Because.", "sys": "Be brief.", "lab": 3}, m, "messages", row_id="f-1")
    assert rec == {"id": "f-1", "messages": msgs((S, "Be brief."), (U, "Why?"), (A, "Because.")), "label": "3"}


def test_alpaca_messages_sharegpt_and_dotted_paths():
    alpaca = ColumnMapping(instruction="instruction", input="input", output="output")
    rec = to_record({"instruction": "Sum", "input": "1 2", "output": "3"}, alpaca, "messages", row_id="x")
    assert rec["messages"] == msgs((U, "Sum\n\n1 2"), (A, "3"))
    rec = to_record({"instruction": "Hi", "input": "", "output": "Hello"}, alpaca, "messages", row_id="x")
    assert rec["messages"] == msgs((U, "Hi"), (A, "Hello"))

    openai = ColumnMapping(messages="chat")
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
             {"role": "assistant", "content": "c"}]
    assert to_record({"chat": parts}, openai, "messages", row_id="x")["messages"] == msgs((U, "ab"), (A, "c"))

    sharegpt = ColumnMapping(conversations="conversations")
    conv = [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    assert to_record({"conversations": conv}, sharegpt, "messages", row_id="x")["messages"] == msgs(
        (S, "s"), (U, "q"), (A, "a"))

    nested = ColumnMapping(question="data.turns.0.text", answer="data.turns.1.text", id="meta.id")
    row = {"data": {"turns": [{"text": "q"}, {"text": "a"}]}, "meta": {"id": 7}}
    assert to_record(row, nested, "messages", row_id="x") == {"id": "7", "messages": msgs((U, "q"), (A, "a"))}


def test_text_and_preference_records():
    assert to_record({"t": "raw text"}, ColumnMapping(text="t"), "text", row_id="x") == {"id": "x", "text": "raw text"}
    qa = ColumnMapping(question="q", answer="a")
    assert to_record({"q": "Q", "a": "A"}, qa, "text", row_id="x")["text"] == "Q\n\nA"
    pref = ColumnMapping(prompt="prompt", chosen="chosen", rejected="rejected")
    rec = to_record({"prompt": "P", "chosen": "good", "rejected": [{"role": "assistant", "content": "bad"}]},
                    pref, "preference", row_id="x")
    assert rec == {"id": "x", "prompt": msgs((U, "P")), "chosen": "good", "rejected": "bad"}


def test_missing_column_lists_columns_and_suggests_the_closest():
    m = ColumnMapping(question="question", answer="answer")
    with pytest.raises(RowProblem) as info:
        to_record({"question": "q", "answr": "a", "source": "x"}, m, "messages", row_id="x")
    p = info.value
    assert p.rule == "missing_field" and p.field == "answer"
    assert "question, answr, source" in p.reason and "did you mean 'answr'" in p.reason
    nested = ColumnMapping(question="data.question", answer="data.answer")
    with pytest.raises(RowProblem, match="did you mean 'anwser'"):
        to_record({"data": {"question": "q", "anwser": "a"}}, nested, "messages", row_id="x")


@pytest.mark.parametrize("value,rule,words", [
    (42, "type", "found a number"), (["a"], "type", "found a list"), ({"x": 1}, "type", "found an object"),
    ("", "empty", "empty"), ("   ", "empty", "empty"), (None, "empty", "null"), (True, "type", "boolean"),
])
def test_wrong_types_and_empty_strings(value, rule, words):
    m = ColumnMapping(question="q", answer="a")
    with pytest.raises(RowProblem) as info:
        to_record({"q": "fine", "a": value}, m, "messages", row_id="x")
    assert info.value.rule == rule and words in info.value.reason and info.value.field == "a"


def test_transform_keeps_good_rows_and_rejects_bad_ones_with_location():
    m = ColumnMapping(question="q", answer="a")
    rows = [Row("data/in.jsonl", 1, {"q": "a", "a": "b"}), Row("data/in.jsonl", 2, {"q": 1, "a": "b"}),
            Row("data/in.jsonl", 4, {"q": "c", "a": "d"})]
    kept, rejects = transform(rows, mapping=m, kind="messages")
    assert [r.record["id"] for r in kept] == ["in-1", "in-4"]
    (bad,) = rejects
    assert (bad.file, bad.row, bad.stage, bad.rule, bad.field) == ("data/in.jsonl", 2, "map", "type", "q")
    assert '"q": 1' in bad.raw


def test_mappings_are_validated_and_inferred():
    with pytest.raises(ConfigError, match="match no single shape"):
        parse_mapping("question=q")
    with pytest.raises(ConfigError, match="FIELD=COLUMN"):
        parse_mapping("question")
    with pytest.raises(ConfigError, match="unknown field 'questoin' .did you mean 'question'"):
        parse_mapping({"questoin": "q", "answer": "a"})
    assert infer_mapping(["question", "answer", "label"]).columns() == {
        "question": "question", "answer": "answer", "label": "label"}
    assert infer_mapping(["instruction", "input", "output"]).shape == "alpaca"
    assert infer_mapping(["id", "messages"]).columns() == {"messages": "messages", "id": "id"}
    assert infer_mapping(["schemaVersion", "messages", "system"]).shape == "bedrock"
    with pytest.raises(ConfigError, match="cannot guess"):
        infer_mapping(["foo", "bar"])
    with pytest.raises(ConfigError, match="cannot make 'messages'"):
        check_shape(ColumnMapping(text="t"), "messages")
    with pytest.raises(ConfigError, match="cannot make 'preference'"):
        check_shape(ColumnMapping(question="q", answer="a"), "preference")


def test_bedrock_round_trip_and_import_through_the_mapping():
    record = {"id": "1", "messages": msgs((S, "be kind"), (U, "hi"), (A, "hello")), "label": "greet"}
    bedrock = to_bedrock(record)
    assert bedrock == {
        "schemaVersion": BEDROCK_SCHEMA,
        "system": [{"text": "be kind"}],
        "messages": [{"role": "user", "content": [{"text": "hi"}]},
                     {"role": "assistant", "content": [{"text": "hello"}]}],
        "label": "greet",
    }
    assert from_bedrock(bedrock)["messages"] == record["messages"]
    m = infer_mapping(list(bedrock))
    assert to_record(bedrock, m, "messages", row_id="r")["messages"] == record["messages"]
    broken = {"schemaVersion": BEDROCK_SCHEMA, "messages": [{"role": "user", "content": [{"image": {}}]}]}
    kept, rejects = transform([Row("b.jsonl", 1, broken)], mapping=m, kind="messages")
    assert not kept and rejects[0].rule == "bedrock" and "only text" in rejects[0].reason
