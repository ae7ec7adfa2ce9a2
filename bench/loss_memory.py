"""Peak memory of one training step: the full-logits loss against the chunked loss, on a 150k-vocabulary model.

    .venv/bin/python bench/loss_memory.py [--vocab 151936] [--batch 4] [--seq 256] [--chunk 128]

The model is a tiny Llama built from config (hidden 64, 2 layers) with Qwen2.5's vocabulary size, so the
output head and its logits dominate the step, as they do for small models with large vocabularies. Each variant
runs in a fresh process (one torch thread): build the model, AdamW and a batch with every token labeled, then one
training step (forward, backward, optimizer step). Peak memory of the step = the process's peak RSS
(`resource.getrusage`) after the step minus its RSS just before it; on a GPU, torch.cuda.max_memory_allocated
after a reset. Both losses are printed; they must agree to 1e-5 relative. Target: the chunked step's peak is at
least 3x lower.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def one_step(variant: str, *, vocab: int, batch: int, seq: int, chunk: int, device: str) -> dict:
    import resource

    import psutil
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mixforge.train.losses import TokenLoss

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=192, max_position_embeddings=seq,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config).to(device)
    loss_model = TokenLoss(model, chunk_size=0 if variant == "full" else chunk, kernel="chunked")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (batch, seq), generator=generator).to(device)
    batch_inputs = {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}
    process = psutil.Process()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = process.memory_info().rss
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    loss = loss_model(**batch_inputs)
    loss.backward()
    optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
        peak, valid = torch.cuda.max_memory_allocated(), True
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        valid = peak > peak_before  # the step set the process's peak (else its own peak was hidden below)
    return {"variant": variant, "loss": float(loss), "tokens": batch * (seq - 1), "peak_delta_mb": (peak - before) / 2**20,
            "measured": valid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=int, default=151_936)  # Qwen2.5
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # set in the child process
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(one_step(args.variant, vocab=args.vocab, batch=args.batch, seq=args.seq, chunk=args.chunk,
                                  device=args.device)))
        return

    rows = []
    for variant in ("full", "chunked"):  # each in a fresh process: peak RSS is per process
        argv = [sys.executable, __file__, "--variant", variant, f"--vocab={args.vocab}", f"--batch={args.batch}",
                f"--seq={args.seq}", f"--chunk={args.chunk}", f"--device={args.device}"]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    full, chunked = rows
    logits_mb = full["tokens"] * args.vocab * 4 / 2**20
    print(f"vocabulary {args.vocab:,}, batch {args.batch} x {args.seq} tokens, chunk {args.chunk} tokens, "
          f"{args.device}; fp32 logits of the micro-batch: {logits_mb:,.0f} MiB")
    print(f"{'loss':10s} {'peak memory of the step':>26s} {'loss value':>14s}")
    for r in rows:
        note = "" if r["measured"] else "  (not measured: the process peaked before the step)"
        print(f"{r['variant']:10s} {r['peak_delta_mb']:22,.0f} MiB {r['loss']:14.6f}{note}")
    rel = abs(full["loss"] - chunked["loss"]) / abs(full["loss"])
    ratio = full["peak_delta_mb"] / max(chunked["peak_delta_mb"], 1e-9)
    print(f"peak memory falls {ratio:.1f}x (target >= 3x); losses differ by {rel:.1e} relative (bound 1e-5)")


if __name__ == "__main__":
    main()
