"""The chunked loss equals the full-logits loss (value and gradients, to 1e-5 relative), also under LoRA and with
packed rows; without labels the wrapper is the model."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mixforge.train.batching import pack_batch, pad_batch
from mixforge.train.losses import TokenLoss, chunked_nll_sum, default_chunk_size, full_nll_sum
from mixforge.train.tokenize import IGNORE, tokenize_chat

CHATS = [[{"role": "user", "content": f"Question {i}: what is {w}?"},
          {"role": "assistant", "content": f"{w.capitalize()} is number {i * 7}, a fine answer."}]
         for i, w in enumerate(["refund", "delivery", "password", "battery", "warranty"])]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def records(tok):
    return [tokenize_chat(tok, c, max_seq_len=128) for c in CHATS]


def _model(tiny_model_dir, lora: bool = False):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    if lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False, task_type="CAUSAL_LM"))
    return model


def _loss_and_grads(model, fn, batch):
    model.zero_grad(set_to_none=True)
    loss = fn(model, **batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_chunked_loss_and_gradients_equal_the_full_loss(tiny_model_dir, tok, records, lora, chunk):
    model = _model(tiny_model_dir, lora)
    batch = pad_batch(records, pad_id=tok.pad_token_id)
    ref_loss, ref_grads = _loss_and_grads(model, full_nll_sum, batch)
    loss, grads = _loss_and_grads(model, lambda m, **b: chunked_nll_sum(m, chunk_size=chunk, **b), batch)
    n_label = int((batch["labels"][:, 1:] != IGNORE).sum())
    assert n_label > 40 and ref_loss > 0
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    assert ref_grads.keys() == grads.keys() and len(grads) > 0
    for name, g in ref_grads.items():
        # relative to the gradient's norm: float sums in another order move single small entries by ~1e-5
        assert (grads[name] - g).norm() <= 1e-5 * g.norm(), name
    if lora:
        assert all("lora_" in n for n in grads)


def test_packed_rows_give_the_same_loss_as_padded_rows(tiny_model_dir, tok, records):
    """No cross-contamination: each record in a packed row sees only itself (position ids restart)."""
    model = _model(tiny_model_dir)
    padded = pad_batch(records, pad_id=tok.pad_token_id)
    packed = pack_batch(records, seq_len=128, pad_id=tok.pad_token_id)
    assert packed["input_ids"].shape[0] < len(records)
    with torch.no_grad():
        alone = sum(full_nll_sum(model, **pad_batch([r], pad_id=tok.pad_token_id)) for r in records)
        a = chunked_nll_sum(model, chunk_size=5, **padded)
        b = chunked_nll_sum(model, chunk_size=5, **packed)
    # pack_batch drops each record's first label (never predicted from the previous record); pad_batch starts
    # every row with it anyway unlabeled, so both layouts predict exactly the same tokens
    assert int((packed["labels"][:, 1:] != IGNORE).sum()) == int((padded["labels"][:, 1:] != IGNORE).sum())
    assert b.item() == pytest.approx(a.item(), rel=1e-5)
    assert a.item() == pytest.approx(alone.item(), rel=1e-5)


def test_contamination_would_show(tiny_model_dir, tok, records):
    """The packed comparison above can fail: without position ids, the second record of a row attends to the first
    and its loss changes."""
    model = _model(tiny_model_dir)
    packed = pack_batch(records, seq_len=128, pad_id=tok.pad_token_id)
    leaky = {"input_ids": packed["input_ids"], "labels": packed["labels"]}
    with torch.no_grad():
        good = chunked_nll_sum(model, chunk_size=5, **packed)
        bad = chunked_nll_sum(model, chunk_size=5, **leaky)
    # a random tiny model barely uses context, yet the leak moves the loss 10x beyond the 1e-5 bound used above
    assert abs(bad.item() - good.item()) > 1e-4 * good.item()


def test_token_loss_wrapper(tiny_model_dir, tok, records):
    model = _model(tiny_model_dir)
    batch = pad_batch(records, pad_id=tok.pad_token_id)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        logits = TokenLoss(model, chunk_size=16)(**inputs).logits  # no labels: the model's own output
        torch.testing.assert_close(logits, model(**inputs).logits, rtol=0, atol=0)
        full = TokenLoss(model, chunk_size=0)(**batch)
        chunked = TokenLoss(model, chunk_size=16)(**batch)
    assert TokenLoss(model).kernel == "chunked"  # no CUDA here: Liger is never picked
    assert chunked.item() == pytest.approx(full.item(), rel=1e-5)
    empty = {**batch, "labels": torch.full_like(batch["labels"], IGNORE)}
    zero = TokenLoss(model, chunk_size=16)(**empty)
    zero.backward()  # a row with nothing to predict still reaches every weight (ranks stay in step)
    assert zero.item() == 0.0 and model.lm_head.weight.grad is not None


@pytest.mark.parametrize(("vocab", "chunk"), [(3_072, 1024), (16_384, 1024), (49_152, 341), (151_936, 128), (262_144, 128)])
def test_default_chunk_holds_about_64_mb_of_logits(vocab, chunk):
    assert default_chunk_size(vocab) == chunk
