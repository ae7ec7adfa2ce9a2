"""Generated tokens/s of `replay generate` beside two plain ways of making the same answers, on one model and
the same prompts (the bundled categories' user turns, greedy):

    1. replay generate   mixforge.replay.generate_replay (length-sorted, left-padded batches, KV cache)
    2. one at a time     a loop of model.generate, one prompt per call (what a hand-written script does)
    3. HF batched        transformers' batched generate with its default settings (tokenizer padding)

    OMP_NUM_THREADS=1 flock /tmp/mixforge-heavy.lock .venv/bin/python bench/replay_generate.py \
        --model src/mixforge/assets/models/mixforge-tiny-base --n 512 --max-new-tokens 32

Tokens are the new tokens up to and including the stop token (what a finished answer costs). The one-at-a-time
loop runs on the first --loop-n prompts only (it is slow) and its rate is per token, so the figures compare.
Target: replay generate at least 3x the one-at-a-time loop on CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="src/mixforge/assets/models/mixforge-tiny-base")
    parser.add_argument("--n", type=int, default=512, help="prompts answered by replay generate and HF batched")
    parser.add_argument("--loop-n", type=int, default=128, help="prompts answered one at a time")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--categories", default="baseline,math,rai,stem,reasoning,instruction-following")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from mixforge.eval.evaluator import load_checkpoint
    from mixforge.eval.generate import render_prompt
    from mixforge.replay.generate import _prompt_at, generate_replay, load_prompt_pools, split_counts

    categories = [c.strip() for c in args.categories.split(",")]
    pools = load_prompt_pools(None, categories=categories)
    counts = split_counts(args.n, dict.fromkeys(categories, 1.0))
    prompts = [_prompt_at(pools[c], c, i, 0) for c in categories for i in range(counts[c])]  # replay's order
    ckpt = load_checkpoint(args.model)
    model, tok = ckpt.model, ckpt.tokenizer
    texts = [render_prompt(tok, p) for p in prompts]
    eos = tok.eos_token_id
    rows = {}

    # ---- 1. replay generate (the whole call: model load, fingerprint, prompts, filters, files) ----------------
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = generate_replay(args.model, out_dir=tmp, n=args.n, mode="prompts", categories=categories,
                                 max_new_tokens=args.max_new_tokens, temperature=0.0, batch_size=args.batch_size,
                                 shard_size=max(512, args.batch_size), show_progress=False)
        wall = time.perf_counter() - t0
        manifest = json.loads(result.manifest.read_text())
    rows["replay generate"] = (manifest["tokens_generated"], manifest["seconds"], wall, result.attempted)

    def new_tokens(out_row: list[int]) -> int:
        return next((i + 1 for i, t in enumerate(out_row) if t == eos), len(out_row))

    # ---- 2. a loop of model.generate, one prompt at a time -------------------------------------------------
    t0, tokens = time.perf_counter(), 0
    with torch.inference_mode():
        for text in texts[: args.loop_n]:
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            tokens += new_tokens(out[0, enc["input_ids"].shape[1]:].tolist())
    seconds = time.perf_counter() - t0
    rows["one at a time"] = (tokens, seconds, seconds, min(args.loop_n, len(texts)))

    # ---- 3. transformers' batched generate, default settings ----------------------------------------------
    tok.padding_side = "left"
    t0, tokens = time.perf_counter(), 0
    with torch.inference_mode():
        for i in range(0, len(texts), args.batch_size):
            enc = tok(texts[i : i + args.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=args.max_new_tokens, pad_token_id=tok.pad_token_id)
            tokens += sum(new_tokens(r) for r in out[:, enc["input_ids"].shape[1]:].tolist())
    seconds = time.perf_counter() - t0
    rows["HF batched (defaults)"] = (tokens, seconds, seconds, len(texts))

    loop_rate = rows["one at a time"][0] / rows["one at a time"][1]
    print(f"model {args.model}; {args.threads} thread(s); greedy, max_new_tokens {args.max_new_tokens}, "
          f"batch {args.batch_size}")
    print(f"{'method':<24}{'prompts':>8}{'new tokens':>12}{'gen s':>9}{'wall s':>9}{'tokens/s':>10}{'x loop':>8}")
    for name, (tokens, seconds, wall, count) in rows.items():
        rate = tokens / seconds
        print(f"{name:<24}{count:>8}{tokens:>12}{seconds:>9.2f}{wall:>9.2f}{rate:>10.0f}{rate / loop_rate:>8.1f}")
    print(f"replay generate kept {result.kept} of {result.attempted} (dropped {result.dropped}); "
          f"'gen s' of replay generate is its generation time (filters and shard writes included), "
          f"'wall s' the whole call (model load, fingerprint, prompts)")


if __name__ == "__main__":
    main()
