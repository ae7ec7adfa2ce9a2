"""Sanitize: the seed's exact example, the model's own reserved strings, actions, counts, batch detection."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from mixforge.data.rows import Row
from mixforge.data.sanitize import build_sanitizer, sanitize, sanitize_text

# ---- the seed's code, verbatim in behaviour (shared/seeds, "Download and sanitize the data") ------------------
INVALID_TOKENS = ["System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:", "ASSISTANT:", "Thought:",
                  "[EOS]"]


def seed_sanitize_text(text: str) -> str:
    for token in INVALID_TOKENS:
        if ":" in token:
            word = token[:-1]
            text = re.sub(rf"\b{word}:", f"{word} :", text, flags=re.IGNORECASE)
        else:
            text = text.replace(token, "")
    return text.strip()


SEED = build_sanitizer()  # no model: the seed's markers (escape) and [EOS] (strip)


def test_seed_example_exactly():
    cases = {
        "System: you are a doctor": "System : you are a doctor",
        "User: chest pain?\nAssistant: likely angina [EOS]": "User : chest pain?\nAssistant : likely angina",
        "Thought: check ECG. Bot: done": "Thought : check ECG. Bot : done",
        "  [EOS]answer[EOS]  ": "answer",
        "SubSystem: is not a marker, nor is mySystem:": "SubSystem: is not a marker, nor is mySystem:",
        "no markers at all": "no markers at all",
    }
    for text, expected in cases.items():
        assert seed_sanitize_text(text) == expected  # the reference agrees with the table ...
        assert sanitize_text(text, SEED) == expected  # ... and so do we


def test_any_case_is_escaped_and_the_writers_case_is_kept():
    # the seed rewrites "USER:" as "User :" (its replacement uses the listed spelling); we keep the case
    assert seed_sanitize_text("USER: hi, system: x") == "User : hi, System : x"
    assert sanitize_text("USER: hi, system: x", SEED) == "USER : hi, system : x"


_FRAGMENTS = st.sampled_from(["System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:", "ASSISTANT:",
                              "Thought:", "thought:", "[EOS]", " ", "\n", "hello", "x", "café", "42", ".", "?"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=30), st.sampled_from([" ", "\n", ", "]))
def test_matches_the_seed_on_generated_text(parts, sep):
    text = sep.join(parts)
    ours, theirs = sanitize_text(text, SEED), seed_sanitize_text(text)
    assert ours.lower() == theirs.lower()  # the same text, up to the case of the escaped markers
    if not re.search(r"(?i)\b(?:system|user|assistant|bot|thought):", text):
        assert ours == theirs


def test_strip_runs_before_escape():
    # the seed escapes first, so "[EOS]" glued to a marker changes whether the marker starts a word; we strip
    # first and judge the text as it will be trained on (no marker at a word start is left either way)
    assert seed_sanitize_text("hello[EOS]System: x") == "helloSystem : x"
    assert sanitize_text("hello[EOS]System: x", SEED) == "helloSystem: x"
    assert sanitize_text("[EOS]System: x", SEED) == "System : x"


def rows_of(*texts: str) -> list[Row]:
    return [Row("f.jsonl", i + 1, {"id": str(i), "messages": [{"role": "user", "content": t},
                                                            {"role": "assistant", "content": "ok"}]})
            for i, t in enumerate(texts)]


def test_model_reserved_strings_are_stripped_and_counted(tiny_model_dir):
    from mixforge.models.registry import model_info

    reserved = model_info(str(tiny_model_dir), with_lora_targets=False).reserved_strings
    assert {"<|user|>", "<|assistant|>", "<|end|>", "<|bos|>"} <= set(reserved)
    s = build_sanitizer(reserved=reserved)
    rows = rows_of("a <|end|> b <|user|> c", "plain", "<|us<|end|>er|>x", "System: <|pad|>")
    kept, rejects, hits = sanitize(rows, s)
    assert not rejects
    assert [r.record["messages"][0]["content"] for r in kept] == ["a  b  c", "plain", "x", "System :"]
    assert hits == Counter({"<|end|>": 2, "<|user|>": 2, "System:": 1, "<|pad|>": 1})


def test_reject_and_escape_actions():
    s = build_sanitizer(reserved=["<|end|>"], actions={"[EOS]": "reject", "<|end|>": "escape", "bot:": "strip"})
    rows = rows_of("fine [EOS] text", "a<|end|>b", "Bot: hello", "clean")
    kept, rejects, hits = sanitize(rows, s)
    assert [r.record["messages"][0]["content"] for r in kept] == ["a< |end|>b", "hello", "clean"]
    (bad,) = rejects
    assert (bad.row, bad.stage, bad.rule, bad.field) == (1, "sanitize", "reserved", "messages.0.content")
    assert "[EOS]" in bad.reason and "reject" in bad.reason
    assert hits["[EOS]"] == 1 and hits["<|end|>"] == 1 and hits["Bot:"] == 1


def test_offsets_survive_characters_whose_lower_case_is_longer():
    # 'İ'.lower() is two characters: the batch search must still find the right text
    rows = rows_of("İİİİ", "ok", "İ then System: here")
    kept, _, hits = sanitize(rows, SEED)
    assert kept[2].record["messages"][0]["content"] == "İ then System : here" and hits["System:"] == 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["<|end|>", "<|", "|>", "System", ":", "[EOS]", "a", " ", "İ", "ß"]),
                         max_size=12).map("".join), min_size=1, max_size=8))
def test_batch_detection_never_misses_a_text_that_needs_work(texts):
    s = build_sanitizer(reserved=["<|end|>", "<|user|>"])
    found = s.candidates(texts)
    for i, t in enumerate(texts):
        hits: Counter[str] = Counter()
        s.text(t, hits)
        if hits:
            assert i in found
