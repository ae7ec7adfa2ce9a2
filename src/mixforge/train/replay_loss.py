"""The replay loss `kl`: replay records teach the tuned model the base model's whole next-token distribution on
their tokens, not only the sampled token (`replay_loss: kl`; the default `nll` is the usual cross-entropy).

    loss_sum = kl_to_base_sum(train_model, batch, base_model=ref_or_model, base=base_context(model, ref))

Per label position t (the tokens that would carry the SFT loss), with p the base and q the tuned model:

    KL(p || q)_t = sum_v p(v | x_<t) * (log p(v | x_<t) - log q(v | x_<t))

summed over positions, like `token_nll_sum`, so the recipe normalizes both by the same token count. Its
gradient is that of the cross-entropy to the base's soft targets (the entropy of p is a constant). At step 0
the tuned model is the base (a LoRA adapter starts at zero; a full-rank run starts from the same weights), so
the loss is 0 there. The base's forward pass runs without gradients: for LoRA it is the same model with the
adapter disabled, for full rank the frozen reference copy. It costs one more forward pass per replay
micro-batch, which the recipe's tokens/s includes. The output head runs on the measured positions only (the
body on all of them): both logit tensors are (positions, V) floats, held at once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from mixforge.train.losses import TokenLoss, masked_logits
from mixforge.train.tokenize import IGNORE


def kl_from_logits(base_logits: torch.Tensor, tuned_logits: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Summed KL(base || tuned) over the positions where `mask` is true (None: every position). Logits: (..., V);
    mask: their leading shape."""
    if mask is not None:
        base_logits, tuned_logits = base_logits[mask], tuned_logits[mask]
    base = torch.log_softmax(base_logits.float(), dim=-1)  # (N, V)
    tuned = torch.log_softmax(tuned_logits.float(), dim=-1)
    return (base.exp() * (base - tuned)).sum()


def kl_to_base_sum(train_model, batch: dict[str, torch.Tensor], *, base_model,
                   base: AbstractContextManager) -> torch.Tensor:
    """Summed KL(base || tuned) of `batch`'s label tokens (the positions predicting a label, shifted as in
    `token_nll_sum`). `base` is the context in which `base_model` computes the base (LoRA: adapter off)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    keep = torch.zeros_like(batch["labels"], dtype=torch.bool)
    keep[:, :-1] = batch["labels"][:, 1:] != IGNORE  # position t predicts label t+1
    tuned = _logits_at(train_model, keep, inputs)
    with torch.no_grad(), base:
        reference = _logits_at(base_model, keep, inputs)
    return kl_from_logits(reference, tuned)  # both already at the kept positions only


def _logits_at(model, keep: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N, V) logits at the kept positions: through the loss module's forward when `model` is one (DDP and FSDP
    act on forward), else from the plain (or peft) model."""
    if isinstance(getattr(model, "module", model), TokenLoss):
        return model(**inputs, logits_at=keep)
    return masked_logits(model, keep, **inputs)
