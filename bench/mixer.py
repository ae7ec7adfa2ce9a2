"""Mixer benchmark: 10 general sources of 1,000,000 records each plus a domain source; batches per second per
unit and batch size, and the mixer's share of one training step of a tiny model (target: under 1%).

    .venv/bin/python bench/mixer.py                       # tiny-chat, 1 torch thread
    .venv/bin/python bench/mixer.py --model tiny-1m --threads 2 --steps 300

The training step is one forward + backward + AdamW step of a tiny Llama on a batch of 8 x 256 tokens,
measured in this same process, so both figures share the machine's load.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from fractions import Fraction

import numpy as np

from mixforge.mix.sampler import MixSampler, SourceIndex


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_sources(n_sources: int, n_records: int, seed: int = 0) -> dict[str, SourceIndex]:
    rng = np.random.default_rng(seed)
    sources = {}
    for i in range(n_sources):
        tokens = rng.integers(16, 512, n_records, dtype=np.int32)
        loss = (tokens * rng.uniform(0.1, 0.9, n_records)).astype(np.int32)
        sources[f"general/{i}"] = SourceIndex(n_records, tokens, loss, fingerprint=f"bench-{i}")
    tokens = rng.integers(32, 2048, 50_000, dtype=np.int32)
    sources["customer"] = SourceIndex(50_000, tokens, tokens // 2, fingerprint="bench-customer")
    return sources


def weights(names: list[str]) -> list[tuple[int, dict[str, Fraction]]]:
    general = [n for n in names if n != "customer"]
    first = {"customer": Fraction(50), **{n: Fraction(50 * (k + 1), sum(range(1, len(general) + 1)))
                                          for k, n in enumerate(general)}}
    later = {"customer": Fraction(80), **{n: Fraction(20, len(general)) for n in general}}
    return [(0, first), (1_000_000, later)]  # a second stage, so the schedule path is the real one


def time_mixer(sources, *, unit: str, batch: int, steps: int, world_size: int = 1) -> tuple[float, float]:
    """Seconds to build the sampler (incl. the first step's permutations), and steady seconds per step."""
    t0 = time.perf_counter()
    sampler = MixSampler(sources, weights(list(sources)), global_batch_size=batch, unit=unit, seed=0,
                         world_size=world_size, rank=0)
    sampler.next_batch()
    sampler.metrics()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        sampler.next_batch()
        sampler.metrics()  # the trainer logs these every step
    return first, (time.perf_counter() - t0) / steps


def time_train_step(model_name: str, threads: int, repeats: int) -> float:
    import torch

    from mixforge.models.tiny import build_tiny

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        from transformers import AutoModelForCausalLM

        path = build_tiny(model_name, seed=0, out_dir=f"{tmp}/m")
        model = AutoModelForCausalLM.from_pretrained(path)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(10, model.config.vocab_size, (8, 256))

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up
        step()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="records per general source")
    ap.add_argument("--sources", type=int, default=10, help="general sources")
    ap.add_argument("--steps", type=int, default=2000, help="timed mixer steps per configuration")
    ap.add_argument("--model", default="tiny-chat", help="tiny preset whose training step is the yardstick")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the training step")
    ap.add_argument("--train-repeats", type=int, default=10)
    args = ap.parse_args()

    rss0 = rss_mib()
    t0 = time.perf_counter()
    sources = build_sources(args.sources, args.records)
    print(f"index arrays: {args.sources} x {args.records:,} records + a 50,000-record domain source, "
          f"built in {time.perf_counter() - t0:.2f} s, peak RSS {rss_mib():.0f} MiB (was {rss0:.0f})")

    configs = [("examples", 8), ("examples", 64), ("examples", 512),
               ("tokens", 8 * 256), ("tokens", 64 * 1024), ("loss_tokens", 8 * 256)]
    results = {}
    print(f"\n{'unit':<12}{'global batch':>14}{'first step (s)':>16}{'steps/s':>10}{'us/step':>10}")
    for unit, batch in configs:
        steps = args.steps if batch <= 2048 else max(args.steps // 10, 50)
        first, per = time_mixer(sources, unit=unit, batch=batch, steps=steps)
        results[(unit, batch)] = per
        print(f"{unit:<12}{batch:>14,}{first:>16.3f}{1 / per:>10,.0f}{per * 1e6:>10.0f}")
    first, per = time_mixer(sources, unit="examples", batch=64, steps=args.steps, world_size=4)
    print(f"{'examples':<12}{'64 (W=4)':>14}{first:>16.3f}{1 / per:>10,.0f}{per * 1e6:>10.0f}")
    print(f"peak RSS after the mixer runs: {rss_mib():.0f} MiB")

    train = time_train_step(args.model, args.threads, args.train_repeats)
    print(f"\ntraining step of {args.model} (8 x 256 tokens, fwd+bwd+AdamW, {args.threads} thread(s)): "
          f"{train * 1e3:.1f} ms")
    for key in (("examples", 8), ("tokens", 8 * 256), ("loss_tokens", 8 * 256)):
        share = results[key] / (results[key] + train)
        print(f"mixer share of a step, {key[0]} with batch {key[1]:,}: {share * 100:.3f}% (target < 1%)")


if __name__ == "__main__":
    main()
