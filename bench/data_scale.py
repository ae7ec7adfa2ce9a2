"""Training data at scale: time to the first optimizer step and peak RSS, whole process, at 33k / 100k / 1M
MedReason-sized records (about 1k tokens each), with the token store cold (first run) and warm (cached run),
side by side with TRL's SFTTrainer preprocessing of the same data.

    flock /tmp/mixforge-heavy.lock .venv/bin/python bench/data_scale.py                  # 33k and 100k
    flock /tmp/mixforge-heavy.lock .venv/bin/python bench/data_scale.py --records 1000000 --skip-trl

The model is built offline and cached under bench/results/scale-model: a 49,152-token byte-level BPE trained
with `tokenizers` on generated text, a ChatML template with a default system prompt (SmolLM2 / Qwen2.5 style)
and a randomly initialized Llama of SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads, 3 KV heads,
intermediate 1536, tied embeddings, 8k positions). One step is one LoRA (r16, q/v) update on one record,
max_seq_len 2048, fp32, 2 threads, gradient checkpointing, the default loss chunks (341 tokens). Each measurement is a
fresh process; wall time is from process start to the end of the first optimizer step; peak RSS is the
process's own, and the largest of its tokenizing workers.
Acceptance (issue 15): 33k records, <= 45 s first run, <= 15 s cached, <= 2 GiB; 1M records <= 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_DIR = RESULTS / "scale-model"
VOCAB = 49_152
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


# ---------------------------------------------------------------------------------------------------------
# data: English-like text over a Zipfian vocabulary of 60k made-up words (rare words split into several tokens)
# ---------------------------------------------------------------------------------------------------------
def _lexicon(rng: random.Random, n: int = 60_000) -> list[str]:
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "ee")]
    words = {"".join(rng.choice(syllables) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))) for _ in range(n * 2)}
    return sorted(words)[:n]


class _Text:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = _lexicon(self.rng)
        weights = [1 / (i + 10) for i in range(len(self.words))]  # Zipf-like
        self.pool = self.rng.choices(self.words, weights=weights, k=2_000_000)

    def text(self, words: int) -> str:
        start = self.rng.randrange(len(self.pool) - words)
        out = self.pool[start:start + words]
        for i in range(0, len(out), self.rng.randint(9, 20)):
            out[i] = out[i].capitalize()
            if i:
                out[i - 1] += self.rng.choice((".", ".", ",", "?", ":"))
        return " ".join(out) + "."


def generate(path: Path, records: int, *, seed: int = 0) -> None:
    """Canonical SFT records: a ~60-word question and a ~350-word answer (about 1,000 tokens with the template)."""
    gen = _Text(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(records):
            q = gen.text(int(gen.rng.lognormvariate(4.1, 0.3)))
            a = gen.text(int(gen.rng.lognormvariate(5.85, 0.35)))
            f.write(json.dumps({"id": f"med-{i}", "messages": [{"role": "user", "content": q},
                                                               {"role": "assistant", "content": a}]}) + "\n")


def build_model(out: Path = MODEL_DIR) -> Path:
    """The tokenizer (trained once here, about a minute) and the 135M model, cached."""
    if (out / "model.safetensors").exists():
        return out
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    gen = _Text(1)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((gen.text(500) for _ in range(10_000)), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>", model_max_length=8192)
    fast.chat_template = CHATML
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=576, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, intermediate_size=1536, max_position_embeddings=8192,
                         rope_theta=100_000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                         pad_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    tmp = Path(tempfile.mkdtemp(prefix=".scale-model.", dir=out.parent))
    fast.save_pretrained(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------------------------------------
# one measured process each
# ---------------------------------------------------------------------------------------------------------
def _peaks() -> dict[str, float]:
    return {"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _report(started: float, extra: dict) -> None:
    print("RESULT " + json.dumps({"seconds": time.time() - started, **_peaks(), **extra}), flush=True)
    os._exit(0)  # the first step is what is measured: no final save, no evaluation


def child_mixforge(data: str, out: str, started: float) -> None:
    import torch

    torch.set_num_threads(2)
    from mixforge.config import RunConfig, parse_overrides
    from mixforge.train import recipe

    real, real_store = recipe._train_step, recipe.token_store
    phases = {"store_s": 0.0}

    def store(*args, **kwargs):  # building (first run) or opening (cached run) every token store of the run
        t0 = time.time()
        try:
            return real_store(*args, **kwargs)
        finally:
            phases["store_s"] += time.time() - t0

    def first_step(*args, **kwargs):
        before = _peaks()["rss_mib"]  # data, mixer and model ready: what the step itself adds comes after
        t0 = time.time()
        result = real(*args, **kwargs)
        _report(started, {"loss": result[0], "step_tokens": result[1], "rss_before_step_mib": before,
                          "step_s": time.time() - t0, **phases})

    recipe._train_step, recipe.token_store = first_step, store
    overrides = {"max_steps": 1, "global_batch_size": 1, "micro_batch_size": 1, "max_seq_len": 2048,
                 "lora_rank": 16, "learning_rate": 1e-4,
                 "gradient_checkpointing": True}  # activations of 30 layers x 2k tokens: 2 GiB without it
    # loss_chunk_size: the default, 2**24 / 49,152 = 341 label tokens (64 MB of fp32 logits a chunk); chunks of 1024
    # held 800 MB of logits, log-softmax and gradients at the peak of the backward (2.2-2.4 GiB in all)
    cfg = RunConfig(model=str(MODEL_DIR), method="sft_lora", data_path=data, output_path=out,
                    data_mixing_enabled=False, overrides=parse_overrides(overrides), tracking={"enabled": False})
    recipe.run(cfg, show_progress=False)


def child_trl(data: str, out: str, started: float) -> None:
    import torch

    torch.set_num_threads(2)
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class FirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            _report(started, {})

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32)
    dataset = load_dataset("json", data_files=data, split="train")
    args = SFTConfig(output_dir=out, max_steps=1, per_device_train_batch_size=1, max_length=2048,
                     dataset_num_proc=2, bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True,
                     report_to=[], save_strategy="no", logging_steps=1, learning_rate=1e-4)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]),
                         callbacks=[FirstStep()])
    trainer.train()


def measure(kind: str, data: Path, work: Path, env: dict[str, str]) -> dict:
    started = time.time()
    proc = subprocess.run([sys.executable, __file__, "--_child", kind, str(data), str(work / f"out-{kind}"),
                           repr(started)], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{kind} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def token_stats(data: Path, sample: int = 200) -> tuple[float, int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    with data.open() as f:
        rows = [json.loads(next(f))["messages"] for _ in range(sample)]
    lengths = [len(tok.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"]) for m in rows]
    return sum(lengths) / len(lengths), max(lengths)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, nargs="*", default=[33_000, 100_000])
    p.add_argument("--skip-trl", action="store_true")
    p.add_argument("--trl-max-records", type=int, default=100_000, help="TRL only up to this size")
    p.add_argument("--workdir", default=None, help="data and caches (default bench/results/scale)")
    p.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:
        kind, data, out, started = args._child
        (child_mixforge if kind == "mixforge" else child_trl)(data, out, float(started))
        raise SystemExit("the run ended before its first optimizer step")
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build_model()
    print(f"model and tokenizer: {MODEL_DIR} ({time.perf_counter() - t0:.0f} s)")
    work = Path(args.workdir or RESULTS / "scale")
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.records:
        data = work / f"records_{n}.jsonl"
        if not data.exists():
            t0 = time.perf_counter()
            generate(data, n)
            print(f"generated {data} in {time.perf_counter() - t0:.0f} s")
        mean, longest = token_stats(data)
        print(f"{n:,} records, {data.stat().st_size / 2**20:,.0f} MiB, about {mean:,.0f} tokens each "
              f"(longest of 200: {longest:,})")
        cache = Path(tempfile.mkdtemp(prefix=f"cache-{n}-", dir=work))  # cold caches for this size
        env = {**os.environ, "MIXFORGE_HOME": str(cache / "mixforge"), "HF_DATASETS_CACHE": str(cache / "hf"),
               "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
        kinds = ["mixforge"] + ([] if args.skip_trl or n > args.trl_max_records else ["trl"])
        for kind in kinds:
            for run in ("first run", "cached run"):
                r = measure(kind, data, cache, env)
                rows.append((n, kind, run, r))
                before = (f", {r['rss_before_step_mib']:,.0f} MiB before the step of {r['step_tokens']:,} tokens; "
                          f"token stores {r['store_s']:.1f} s, step {r['step_s']:.1f} s" if "step_s" in r else "")
                print(f"  {kind:<9}{run:<12}{r['seconds']:>8.1f} s  peak RSS {r['rss_mib']:>7,.0f} MiB  "
                      f"(largest worker {r['workers_rss_mib']:,.0f} MiB{before})", flush=True)
    print("\nrecords    tool       run          to first step   peak RSS (process / largest worker)")
    for n, kind, run, r in rows:
        print(f"{n:>9,}  {kind:<9}  {run:<11}  {r['seconds']:>12.1f} s   {r['rss_mib']:>6,.0f} / "
              f"{r['workers_rss_mib']:,.0f} MiB")


if __name__ == "__main__":
    main()
