"""Training throughput: mixforge's trainer against TRL's SFTTrainer, same model, data and hyperparameters.

    .venv/bin/python bench/train_throughput.py [--preset tiny-5m] [--records 256] [--repeats 2]

Data: SFT conversations whose lengths vary uniformly from about 20 to 512 tokens. Both trainers see exactly
the same records once (one epoch, batch 8, fp32, no gradient checkpointing, LoRA r16 on the same modules,
loss on assistant tokens). Throughput = real (non-padding) tokens / seconds of the training loop (model loading
and tokenization excluded for both). Runs alternate mixforge / TRL and the best of `--repeats` is kept, so a
passing load on the machine hurts both alike. Printed side by side, with the ratios.
Targets: >= 1.0x without packing, >= 1.3x with packing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ("the parcel refund invoice account login delivery late broken screen battery charge support agent "
         "order missing item warranty return label store app update crash payment card declined").split()


def make_records(tokenizer, n: int, seed: int, max_len: int) -> list[dict]:
    """Conversations whose templated length is uniform in [20, max_len] tokens: a user question of about a
    quarter of the budget and an assistant answer filling the rest (word costs measured with the tokenizer)."""
    rng = random.Random(seed)
    cost = {w: len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) for w in WORDS}
    overhead = len(tokenizer.apply_chat_template([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}],
                                                 tokenize=True, return_dict=True)["input_ids"])

    def text(budget: int) -> str:
        words, used = [], 0
        while True:
            w = rng.choice(WORDS)
            if used + cost[w] > budget:
                return " ".join(words) or w
            words.append(w)
            used += cost[w]

    records = []
    for i in range(n):
        target = rng.randint(20, max_len) - overhead
        user = max(2, target // 4)
        records.append({"id": f"r{i}", "messages": [{"role": "user", "content": text(user)},
                                                    {"role": "assistant", "content": text(max(2, target - user))}]})
    return records


def real_tokens(tokenizer, records: list[dict], max_len: int) -> int:
    return sum(min(len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]),
                   max_len) for r in records)


def run_mixforge(model_dir: str, data: str, out: Path, *, packing: bool, batch: int, max_len: int) -> float:
    from mixforge.config import RunConfig, parse_overrides
    from mixforge.train.recipe import run

    cfg = RunConfig(model=model_dir, method="sft_lora", data_path=data, output_path=str(out),
                    data_mixing_enabled=False, tracking={"enabled": False},
                    overrides=parse_overrides({"max_epochs": 1, "global_batch_size": batch, "micro_batch_size": batch,
                                               "max_seq_len": max_len, "packing": packing, "lora_rank": 16,
                                               "lora_alpha": 32, "learning_rate": 1e-4, "log_every": 1}))
    run(cfg, show_progress=False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "tokens_per_s" in r][-1]
    return last["tokens_per_s"]  # real tokens since the loop started / seconds since the loop started


def run_trl(model_dir: str, records: list[dict], out: Path, *, packing: bool, batch: int, max_len: int,
            tokens: int) -> float:
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=batch, num_train_epochs=1, learning_rate=1e-4,
                     max_length=max_len, packing=packing, assistant_only_loss=True, bf16=False, fp16=False,
                     gradient_checkpointing=False, use_cpu=True, report_to="none", save_strategy="no",
                     logging_steps=10_000, dataloader_num_workers=0, seed=0, disable_tqdm=True)
    ds = datasets.Dataset.from_list([{"messages": r["messages"]} for r in records])
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer,
                         peft_config=LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                                task_type="CAUSAL_LM"))
    start = time.perf_counter()
    trainer.train()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny-5m")
    parser.add_argument("--records", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from mixforge.models.tiny import build_tiny

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="mixforge-bench-"))
    model_dir = str(build_tiny(args.preset, seed=0, out_dir=root / "model"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    records = make_records(tokenizer, args.records, seed=0, max_len=args.max_len)
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    tokens = real_tokens(tokenizer, records, args.max_len)
    lengths = sorted(min(len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]),
                         args.max_len) for r in records)
    print(f"{args.preset}, {len(records)} records, lengths {lengths[0]}-{lengths[-1]} tokens "
          f"(median {lengths[len(lengths) // 2]}), {tokens:,} real tokens, batch {args.batch}, fp32, LoRA r16, "
          f"{args.threads} threads")

    best: dict[str, float] = {}
    for rep in range(args.repeats):
        for name, fn in [
            ("mixforge", lambda o: run_mixforge(model_dir, str(data), o, packing=False, batch=args.batch, max_len=args.max_len)),
            ("trl", lambda o: run_trl(model_dir, records, o, packing=False, batch=args.batch, max_len=args.max_len, tokens=tokens)),
            ("mixforge+packing", lambda o: run_mixforge(model_dir, str(data), o, packing=True, batch=args.batch, max_len=args.max_len)),
            ("trl+packing", lambda o: run_trl(model_dir, records, o, packing=True, batch=args.batch, max_len=args.max_len, tokens=tokens)),
        ]:
            tps = fn(root / f"{name}-{rep}")
            best[name] = max(best.get(name, 0.0), tps)
            print(f"  run {rep + 1}: {name:18s} {tps:9,.0f} tokens/s", flush=True)

    print("\nbest of runs (real tokens per second of the training loop)")
    for name, tps in best.items():
        print(f"  {name:18s} {tps:9,.0f}")
    print(f"\nmixforge / TRL, no packing:            {best['mixforge'] / best['trl']:.2f}x  (target >= 1.0x)")
    print(f"mixforge+packing / TRL, no packing:    {best['mixforge+packing'] / best['trl']:.2f}x  (target >= 1.3x)")
    print(f"mixforge+packing / TRL+packing:        {best['mixforge+packing'] / best['trl+packing']:.2f}x")


if __name__ == "__main__":
    main()
