"""Training throughput and MFU on a Qwen2.5-0.5B-shaped model: mixforge's recipe (LoRA and full; packing, Liger and
torch.compile each on and off) side by side with TRL's SFTTrainer on the same data.

    .venv/bin/python bench/gpu.py            # on a GPU: the 0.5B shape built from config, and the hub model if cached
    .venv/bin/python bench/gpu.py --tiny     # anywhere (CPU): the same code paths on a shrunken model

The model is built from Qwen2.5-0.5B's config (hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4864, vocabulary
151,936, tied embeddings; no download) with a BPE tokenizer trained here; `Qwen/Qwen2.5-0.5B` is measured too
when it is in the local Hugging Face cache. Data: chat records whose lengths vary uniformly up to --max-len.
Throughput = real (non-padding) tokens / seconds of the training loop; MFU = tokens/s x FLOPs per token / peak
FLOP/s, with FLOPs per token = 6N (full) or 4N (LoRA: no weight gradients for the frozen base) + 12 L d T for
attention (N: parameters, L: layers, d: hidden size, T: sequence). Peak: the GPU's dense bf16 figure (--peak-tflops,
989 for H100/H200), on CPU a measured fp32 matmul. A variant that cannot run here (Liger without CUDA) is listed
with the reason instead of a number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import make_records, real_tokens  # noqa: E402 - the same data generator as the CPU bench

QWEN_05B = {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
            "intermediate_size": 4864, "vocab_size": 151_936}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 192, "vocab_size": 4_096}


def build_model_dir(shape: dict, out: Path, max_len: int) -> str:
    """A Qwen2 model of `shape` with random weights and a byte-level BPE tokenizer (chat template included)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mixforge.models.tiny import corpus_texts, train_tokenizer

    tokenizer = train_tokenizer(corpus_texts(), vocab_size=min(shape["vocab_size"], 16_384), model_max_length=max_len)
    config = Qwen2Config(**{**shape, "vocab_size": max(shape["vocab_size"], len(tokenizer))},
                         max_position_embeddings=max(max_len, 512), tie_word_embeddings=True, rope_theta=1e6,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def flops_per_token(model_dir: str, *, lora: bool, seq: int) -> tuple[float, int]:
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    kv = c.hidden_size // c.num_attention_heads * c.num_key_value_heads
    per_layer = c.hidden_size * (2 * c.hidden_size + 2 * kv) + 3 * c.hidden_size * c.intermediate_size
    n = c.num_hidden_layers * per_layer + c.vocab_size * c.hidden_size  # the (tied) head multiplies; lookups don't
    return (4 if lora else 6) * n + 12 * c.num_hidden_layers * c.hidden_size * seq, n


def peak_flops(device: str, peak_tflops: float) -> tuple[float, str]:
    import torch

    if device == "cuda":
        return peak_tflops * 1e12, f"{peak_tflops:g} TFLOP/s (dense bf16, --peak-tflops)"
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    rate = 2 * 1024**3 * reps / (time.perf_counter() - start)
    return rate, f"{rate / 1e9:.0f} GFLOP/s (fp32 matmul measured here, {torch.get_num_threads()} threads)"


def run_mixforge(model_dir: str, data: str, out: Path, *, lora: bool, packing: bool, liger: bool, compile_: bool,
                 batch: int, max_len: int, precision: str) -> float:
    from mixforge.config import RunConfig, parse_overrides
    from mixforge.train.recipe import run

    cfg = RunConfig(model=model_dir, method="sft_lora" if lora else "sft_full", data_path=data, output_path=str(out),
                    data_mixing_enabled=False, tracking={"enabled": False},
                    overrides=parse_overrides({"max_epochs": 1, "global_batch_size": batch, "micro_batch_size": batch,
                                               "max_seq_len": max_len, "packing": packing, "lora_rank": 16,
                                               "lora_alpha": 32, "learning_rate": 1e-4, "precision": precision,
                                               "loss_kernel": "liger" if liger else "chunked", "compile": compile_}))
    run(cfg, show_progress=False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "tokens_per_s" in r][-1]["tokens_per_s"]


def run_trl(model_dir: str, records: list[dict], out: Path, *, lora: bool, packing: bool, batch: int, max_len: int,
            tokens: int, device: str) -> float:
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    on_gpu = device == "cuda"
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=batch, num_train_epochs=1, learning_rate=1e-4,
                     max_length=max_len, packing=packing, assistant_only_loss=True, bf16=on_gpu, fp16=False,
                     gradient_checkpointing=False, use_cpu=not on_gpu, report_to="none", save_strategy="no",
                     logging_steps=10_000, dataloader_num_workers=0, seed=0, disable_tqdm=True)
    ds = datasets.Dataset.from_list([{"messages": r["messages"]} for r in records])
    peft_config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM") if lora else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer, peft_config=peft_config)
    start = time.perf_counter()
    trainer.train()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="Shrink the model (hidden 64, 2 layers, vocabulary 4k) to run on CPU.")
    parser.add_argument("--records", type=int, default=None, help="Records (default 512 on GPU, 64 with --tiny).")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=None, help="Longest record (default 2048 on GPU, 256 with --tiny).")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="The GPU's dense bf16 peak (H100/H200 SXM: 989).")
    parser.add_argument("--no-trl", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from mixforge.train.losses import liger_available

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n_records = args.records or (64 if args.tiny else 512)
    max_len = args.max_len or (256 if args.tiny else 2048)
    precision = "bf16" if device == "cuda" else "fp32"
    root = Path(tempfile.mkdtemp(prefix="mixforge-gpu-bench-"))
    models = {("qwen2.5-0.5b-shape, tiny" if args.tiny else "qwen2.5-0.5b-shape"):
              build_model_dir(TINY if args.tiny else QWEN_05B, root / "model", max_len)}
    if not args.tiny:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache("Qwen/Qwen2.5-0.5B", "config.json"), str):
            models["Qwen/Qwen2.5-0.5B (hub)"] = "Qwen/Qwen2.5-0.5B"
    peak, peak_note = peak_flops(device, args.peak_tflops)
    print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else f'{args.threads} threads'}), "
          f"{precision}, batch {args.batch}, records {n_records} up to {max_len} tokens; peak {peak_note}")

    table = []
    for label, model_dir in models.items():
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        records = make_records(tokenizer, n_records, seed=0, max_len=max_len)
        data = root / f"data-{len(table)}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in records))
        tokens = real_tokens(tokenizer, records, max_len)
        for lora in (True, False):
            fpt, n_params = flops_per_token(model_dir, lora=lora, seq=max_len)
            variants = [("mixforge", False, False, False), ("mixforge", True, False, False),
                        ("mixforge", True, True, False), ("mixforge", True, False, True)]
            if not args.no_trl:
                variants += [("trl", False, False, False), ("trl", True, False, False)]
            for engine, packing, liger, compile_ in variants:
                name = f"{engine} {'lora' if lora else 'full'} packing={'on' if packing else 'off'} " \
                       f"liger={'on' if liger else 'off'} compile={'on' if compile_ else 'off'}"
                if liger and not liger_available():
                    table.append((label, name, None, None, "not run: Liger needs CUDA and liger-kernel"))
                    print(f"  {name}: skipped (Liger needs CUDA and liger-kernel)", flush=True)
                    continue
                out = root / f"run-{len(table)}"
                try:
                    if engine == "mixforge":
                        tps = run_mixforge(model_dir, str(data), out, lora=lora, packing=packing, liger=liger,
                                           compile_=compile_, batch=args.batch, max_len=max_len, precision=precision)
                    else:
                        tps = run_trl(model_dir, records, out, lora=lora, packing=packing, batch=args.batch,
                                      max_len=max_len, tokens=tokens, device=device)
                except Exception as exc:  # a variant that fails here (e.g. no compiler for torch.compile) is reported
                    table.append((label, name, None, None, f"failed: {type(exc).__name__}: {str(exc)[:80]}"))
                    print(f"  {name}: failed ({type(exc).__name__}: {exc})", flush=True)
                    continue
                mfu = tps * fpt / peak
                table.append((label, name, tps, mfu, ""))
                print(f"  {name}: {tps:,.0f} tokens/s, MFU {mfu:.1%}", flush=True)
        print(f"{label}: {n_params / 1e6:.1f}M parameters (tied head counted once), {tokens:,} real tokens")

    print("\n| model | engine / settings | tokens/s | MFU | note |\n|---|---|---|---|---|")
    for label, name, tps, mfu, note in table:
        print(f"| {label} | {name} | {'' if tps is None else f'{tps:,.0f}'} | {'' if mfu is None else f'{mfu:.1%}'} | {note} |")
    if device != "cuda":
        print("\nNo GPU here: these are CPU figures of the code paths, not GPU throughput (targets: MFU >= 40% full, "
              ">= 30% LoRA, 0.5B shape with packing on one H100-class GPU).")


if __name__ == "__main__":
    main()
