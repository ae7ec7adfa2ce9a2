"""Tokenization (assistant-only labels, truncation counted) and batching (packing leaks nothing)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mixforge.train.batching import pack_batch, pack_rows, pad_batch
from mixforge.train.recipe import token_nll_sum
from mixforge.train.tokenize import IGNORE, tokenize_chat, tokenize_record, tokenize_text


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"},
        {"role": "assistant", "content": "Lima."}, {"role": "user", "content": "And Chile?"},
        {"role": "assistant", "content": "Santiago."}]


def test_labels_cover_assistant_turns_only(tok):
    t = tokenize_chat(tok, CHAT, max_seq_len=512)
    kept = [i for i, lab in zip(t.input_ids, t.labels, strict=True) if lab != IGNORE]
    assert tok.decode(kept) == "Lima.<|end|>Santiago.<|end|>"
    assert t.truncated == 0 and t.loss_tokens == len(kept)


def test_template_without_generation_blocks_gives_the_same_labels(tok):
    plain = AutoTokenizer.from_pretrained(tok.name_or_path)
    plain.chat_template = plain.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    a, b = tokenize_chat(tok, CHAT, max_seq_len=512), tokenize_chat(plain, CHAT, max_seq_len=512)
    # the same labels: the newline the template writes after <|end|> is not part of the answer (it used to be)
    assert (a.input_ids, a.labels) == (b.input_ids, b.labels)


def test_truncation_is_counted(tok):
    t = tokenize_chat(tok, CHAT, max_seq_len=10)
    full = tokenize_chat(tok, CHAT, max_seq_len=10_000)
    assert len(t.input_ids) == 10 and t.truncated == len(full.input_ids) - 10


def test_text_records_carry_loss_on_every_token_and_labels_come_from_classification(tok):
    t = tokenize_text(tok, "hello world", max_seq_len=64)
    assert t.labels == t.input_ids and t.input_ids[0] == tok.bos_token_id and t.input_ids[-1] == tok.eos_token_id
    r = tokenize_record(tok, {"messages": [{"role": "user", "content": "Classify: late parcel"}],
                              "label": "Delivery > Late"}, max_seq_len=128)
    kept = [i for i, lab in zip(r.input_ids, r.labels, strict=True) if lab != IGNORE]
    assert tok.decode(kept) == "Delivery > Late<|end|>"


def test_pack_rows_first_fit_decreasing():
    assert pack_rows([5, 3, 4, 2], 8) == [[0, 1], [2, 3]]
    assert pack_rows([8, 8], 8) == [[0], [1]]


def test_packed_loss_equals_padded_loss(tiny_model_dir, tok):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    convs = [[{"role": "user", "content": f"Question {i} " * (i + 1)}, {"role": "assistant", "content": "Yes " * i}]
             for i in range(1, 6)]
    records = [tokenize_chat(tok, c, max_seq_len=512) for c in convs] + [tokenize_text(tok, "plain text", max_seq_len=64)]
    padded = pad_batch(records, pad_id=tok.pad_token_id)
    packed = pack_batch(records, seq_len=96, pad_id=tok.pad_token_id)
    assert packed["input_ids"].shape[0] < len(records)  # several records share a row
    with torch.no_grad():
        a = token_nll_sum(model, padded)
        b = token_nll_sum(model, packed)
    n_padded = int((padded["labels"][:, 1:] != IGNORE).sum())
    # the text record's first token (BOS) is never predicted in either layout
    assert int((packed["labels"][:, 1:] != IGNORE).sum()) == n_padded
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-4), (a, b)
