"""The summed next-token loss, without the whole micro-batch's logits.

A causal LM's training step usually materializes fp32 logits of shape (batch, sequence, vocabulary): 8 x 2048 x
151,936 floats is 10 GB for Qwen, more than a 0.5B model's weights, gradients and optimizer state together. Here
the model body runs to its last hidden states, only the positions that carry a label are kept, and the output
head plus the cross-entropy run on `chunk_size` tokens at a time, each chunk under activation checkpointing, so
neither the forward nor the backward ever holds more than one chunk's logits (chunk_size x vocabulary).

    loss_model = TokenLoss(model, chunk_size=1024)      # what DDP / FSDP wrap: the loss is inside forward
    nll_sum = loss_model(input_ids=..., labels=..., attention_mask=...)
    out = loss_model(input_ids=...)                     # no labels: the model's own output (logits)
    logits = loss_model(input_ids=..., logits_at=mask)  # (N, V): the head on the masked positions only

The loss sits inside `forward` because DDP prepares its gradient reduction and FSDP gathers the head's weights
only when the wrapped module's forward runs. Kernels: "chunked" (plain PyTorch), "liger" (Liger's fused linear
cross-entropy, CUDA only, extra mixforge[liger]) or "full" (the plain full-logits loss, chunk_size 0).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mixforge.train.tokenize import IGNORE

Kernel = Literal["auto", "chunked", "liger"]
LIGER_HINT = "pip install 'mixforge[liger]' (liger-kernel, CUDA only)"


def default_chunk_size(vocab_size: int) -> int:
    """Label tokens per loss chunk when the config leaves it open: 2**24 logits (64 MB in fp32), between 128 and
    1024 tokens. At 49k vocabulary a 1,024-token chunk's logits, log-softmax and gradients held about 800 MB at
    the backward peak of a 135M model's LoRA step (bench/data_scale.py); small vocabularies keep 1,024."""
    return max(128, min(1024, 2**24 // max(vocab_size, 1)))


def liger_available() -> bool:
    from importlib.util import find_spec

    return torch.cuda.is_available() and find_spec("liger_kernel") is not None


def full_nll_sum(model, labels: torch.Tensor, **inputs) -> torch.Tensor:
    """Summed next-token cross-entropy from the model's full logits (labels are shifted here)."""
    logits = model(**inputs, use_cache=False).logits[:, :-1].float()  # (B, T-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=IGNORE,
                           reduction="sum")


def chunked_nll_sum(model, labels: torch.Tensor, *, chunk_size: int, kernel: Kernel = "chunked",
                    **inputs) -> torch.Tensor:
    """The same sum as `full_nll_sum`, computed `chunk_size` label tokens at a time (or by Liger's kernel)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model or the HF model
    hidden = base.get_decoder()(**inputs, use_cache=False).last_hidden_state  # (B, T, H), after the final norm
    targets = labels[:, 1:]
    keep = targets != IGNORE
    h, y = hidden[:, :-1][keep], targets[keep]  # (N, H), (N,): only positions that carry a label
    head = base.get_output_embeddings()
    softcap = getattr(base.config, "final_logit_softcapping", None)  # Gemma 2/3 squash logits with tanh
    if kernel == "liger" and type(head) is nn.Linear:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        loss_fn = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE, reduction="sum", softcap=softcap)
        return loss_fn(head.weight, h, y, head.bias)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, y.numel(), chunk_size):
        h_chunk, y_chunk = h[start : start + chunk_size], y[start : start + chunk_size]
        if torch.is_grad_enabled() and y.numel() > chunk_size:  # backward recomputes the chunk's logits (one
            # chunk alone: no saving, its logits are alive at the start of backward either way)
            total = total + checkpoint(_chunk_nll_sum, head, h_chunk, y_chunk, softcap, use_reentrant=False)
        else:
            total = total + _chunk_nll_sum(head, h_chunk, y_chunk, softcap)
    if y.numel() == 0:  # nothing to predict: a zero that still depends on the weights (every rank joins backward)
        total = total + hidden.sum() * 0.0
    return total


def _chunk_nll_sum(head: nn.Module, h: torch.Tensor, y: torch.Tensor, softcap: float | None) -> torch.Tensor:
    logits = head(h).float()  # (chunk, V): the only logits alive at any time
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, y, reduction="sum")


def masked_logits(model, keep: torch.Tensor, **inputs) -> torch.Tensor:
    """The output head's fp32 logits at the positions where `keep` (B, T) is true, and nowhere else: (N, V).
    The model body runs on every position; the head (and a Gemma softcap) only on the kept ones."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model or the HF model
    hidden = base.get_decoder()(**inputs, use_cache=False).last_hidden_state  # (B, T, H), after the final norm
    logits = base.get_output_embeddings()(hidden[keep]).float()
    softcap = getattr(base.config, "final_logit_softcapping", None)
    return torch.tanh(logits / softcap) * softcap if softcap else logits


class TokenLoss(nn.Module):
    """A causal LM whose forward returns the summed next-token loss when given labels (and the model's own
    output otherwise). `chunk_size` 0 computes the loss from full logits."""

    def __init__(self, model: nn.Module, *, chunk_size: int = 1024, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size
        self.kernel = ("liger" if liger_available() else "chunked") if kernel == "auto" else kernel

    def forward(self, labels: torch.Tensor | None = None, logits_at: torch.Tensor | None = None, **inputs):
        """The summed loss (labels given), the logits at the `logits_at` positions only (a (B, T) mask: (N, V)),
        or else the model's own output."""
        if logits_at is not None:
            return masked_logits(self.model, logits_at, **inputs)
        if labels is None:
            return self.model(**inputs)
        if self.chunk_size == 0 and self.kernel != "liger":
            return full_nll_sum(self.model, labels, **inputs)
        return chunked_nll_sum(self.model, labels, chunk_size=self.chunk_size or 1024, kernel=self.kernel, **inputs)
