"""Assistant-only labels and the generation prompt on every zoo family: labels cover exactly each assistant
turn's content and its closing token; templates that rewrite earlier turns are refused by name."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer
from zoo import FAMILIES, ZOO_FAMILIES, make_zoo_tokenizer

from mixforge.errors import DataError
from mixforge.train.tokenize import IGNORE, tokenize_chat, tokenize_chat_batch, tokenize_record

SINGLE = [{"role": "user", "content": "How does the immune system work?"},
          {"role": "assistant", "content": "White cells find and fight germs."}]
MULTI = [*SINGLE, {"role": "user", "content": "And the nervous system?"},
         {"role": "assistant", "content": "Nerves carry signals:\nfast."}]
SYSTEM = [{"role": "system", "content": "Be brief."}, *MULTI]

# Which conversations each family can label; the others must be refused.
PREFIX_STABLE = {
    "chatml_default_system": (SINGLE, MULTI, SYSTEM),
    "chatml_qwen3": (SINGLE,),
    "llama3": (SINGLE, MULTI, SYSTEM),
    "gemma": (SINGLE, MULTI, SYSTEM),
    "mistral": (SINGLE, MULTI),
    "phi3": (SINGLE, MULTI, SYSTEM),
}
REFUSED = {"chatml_qwen3": (MULTI, SYSTEM), "mistral": (SYSTEM,)}


@pytest.fixture(scope="module")
def tokenizers(zoo_tokenizer_dir):
    return {f: AutoTokenizer.from_pretrained(zoo_tokenizer_dir(f)) for f in ZOO_FAMILIES}


def labeled_runs(tok, t) -> list[str]:
    """The text of each run of consecutive loss-carrying tokens."""
    runs, current = [], []
    for token, label in zip(t.input_ids, t.labels, strict=True):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tok.decode(r) for r in runs]


def expected_runs(family: str, messages: list[dict]) -> list[str]:
    spec = FAMILIES[family]
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    if family == "chatml_qwen3":  # the last answer is rendered with an (empty) thinking block, and learned so
        answers[-1] = "<think>\n\n</think>\n\n" + answers[-1]
    # Mistral writes ' ' + answer: the space is part of the answer's first token ('ĠWhite'), so it is learned too
    space = " " if family == "mistral" else ""
    return [space + a + spec.end_of_turn for a in answers]


@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_labels_are_exactly_the_answers_and_their_closing_token(family, tokenizers):
    tok = tokenizers[family]
    for messages in PREFIX_STABLE[family]:
        t = tokenize_chat(tok, messages, max_seq_len=4096)
        assert labeled_runs(tok, t) == expected_runs(family, messages), (family, len(messages))
        # the ids are what the template tokenizes to, untouched
        assert t.input_ids == list(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


@pytest.mark.parametrize("family", sorted(REFUSED))
def test_templates_that_rewrite_earlier_turns_are_refused_by_name(family, tokenizers):
    tok = tokenizers[family]
    for messages in REFUSED[family]:
        with pytest.raises(DataError, match="rewrites earlier turns") as info:
            tokenize_chat(tok, messages, max_seq_len=4096)
        assert tok.name_or_path in str(info.value) and "turn" in str(info.value)
        assert info.value.field and info.value.field.startswith("messages.")


def test_qwen3_refusal_names_the_first_misplaced_turn(tokenizers):
    with pytest.raises(DataError, match=r"through turn 1 \(assistant\)"):
        tokenize_chat(tokenizers["chatml_qwen3"], MULTI, max_seq_len=4096)


@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_the_generation_prompt_is_the_assistant_header_and_labels_start_after_it(family, tokenizers):
    tok, spec = tokenizers[family], FAMILIES[family]
    prompt = tok.apply_chat_template(SINGLE[:1], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(SINGLE, tokenize=False)
    assert prompt.endswith(spec.generation_prompt) and full.startswith(prompt)
    if spec.generation_prompt:
        assert spec.generation_prompt == spec.role_markers["assistant"]
    t = tokenize_chat(tok, SINGLE, max_seq_len=4096)
    first = next(i for i, label in enumerate(t.labels) if label != IGNORE)
    assert tok.decode(t.input_ids[:first]) == prompt


class _CountingBackend:
    """The Rust tokenizer, counting encode_batch calls (a built-in type: its methods cannot be patched)."""

    def __init__(self, backend, calls: list[int]) -> None:
        self._backend, self._calls = backend, calls

    def encode_batch(self, *args, **kwargs):
        self._calls.append(1)
        return self._backend.encode_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._backend, name)


def test_batch_is_one_tokenizer_call_and_equals_one_by_one(tokenizers, monkeypatch):
    tok = tokenizers["llama3"]
    conversations = [SINGLE, MULTI, SYSTEM] * 3
    one_by_one = [tokenize_chat(tok, m, max_seq_len=40) for m in conversations]
    calls = []
    backend = tok.backend_tokenizer
    monkeypatch.setattr(type(tok), "backend_tokenizer", property(lambda self: _CountingBackend(backend, calls)))
    assert tokenize_chat_batch(tok, conversations, max_seq_len=40) == one_by_one
    assert len(calls) == 1
    assert one_by_one[2].truncated == len(tokenize_chat(tok, SYSTEM, max_seq_len=10_000).input_ids) - 40


# Span edges on characters that byte-level BPE splits into several tokens, or merges with neighbours
EDGES = [[{"role": "user", "content": "Translate, please: 東京"}, {"role": "assistant", "content": "東京は首都です 🎉"}],
         [{"role": "user", "content": "🎉🎉"}, {"role": "assistant", "content": "é͂ñ 🧑‍🔬 naïve"}],
         [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  leading and trailing spaces  "}]]


@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_span_edges_from_the_encoding_equal_the_offsets_rule(tokenizers, family):
    """`span_mask` (char_to_token per span edge) marks exactly the tokens `loss_mask` marks from the full
    offsets, including multi-byte characters split across tokens at either edge of a span."""
    import numpy as np

    from mixforge.train.tokenize import assistant_spans, loss_mask, span_mask

    tok = tokenizers[family]
    for messages in [*EDGES, *PREFIX_STABLE[family]]:
        text, spans = assistant_spans(tok, messages)
        encoding = tok.backend_tokenizer.encode(text, add_special_tokens=False)
        expected = loss_mask(np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2), spans)
        assert expected.any()
        assert span_mask(encoding, spans, len(encoding.ids)).tolist() == expected.tolist(), (family, messages)
    # every span of a short text full of split characters: either edge inside a multi-byte character's tokens
    text = "aé͂ñ 東京🎉x 🧑‍🔬y"
    encoding = tok.backend_tokenizer.encode(text, add_special_tokens=False)
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    checked = 0
    for start in range(len(text)):
        for end in range(start + 1, len(text) + 1):
            mask = span_mask(encoding, [(start, end)], len(encoding.ids))
            if mask is not None:  # None: an edge on a character no token holds (the caller uses the offsets)
                assert mask.tolist() == loss_mask(offsets, [(start, end)]).tolist(), (family, text[start:end])
                checked += 1
    assert checked > 100


def test_a_backend_left_truncating_is_not_used_as_is(tokenizers):
    """A tokenizer.json may carry truncation or padding settings: the tokens are still the whole conversation's."""
    tok = AutoTokenizer.from_pretrained(tokenizers["llama3"].name_or_path)
    whole = tokenize_chat(tok, MULTI, max_seq_len=10_000)
    tok.backend_tokenizer.enable_truncation(max_length=5)
    tok.backend_tokenizer.enable_padding(length=200, pad_id=0)
    assert tokenize_chat(tok, MULTI, max_seq_len=10_000) == whole


def test_generation_blocks_give_the_same_labels_as_spans(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert "{% generation %}" in tok.chat_template
    for messages in (SINGLE, MULTI, SYSTEM):
        enc = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        mask_labels = [t if m else IGNORE for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True)]
        assert tokenize_chat(tok, messages, max_seq_len=4096).labels == mask_labels


def test_classification_label_becomes_the_answer_on_every_family(tokenizers):
    for family in ZOO_FAMILIES:
        tok = tokenizers[family]
        r = tokenize_record(tok, {"messages": SINGLE[:1], "label": "Immunology"}, max_seq_len=512)
        expected = expected_runs(family, [{"role": "assistant", "content": "Immunology"}])
        assert labeled_runs(tok, r) == expected, family


def test_a_zoo_tokenizer_is_fast():
    assert all(make_zoo_tokenizer(f).is_fast for f in ("llama3", "phi3"))
