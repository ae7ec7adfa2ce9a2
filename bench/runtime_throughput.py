"""Training tokens/s through the runtimes: one process (1 and 2 threads) against torchrun with 2 processes
(gloo DDP, 1 thread each), same model, data and global batch. Optionally Ray Train with 2 workers.

    .venv/bin/python bench/runtime_throughput.py [--preset tiny-5m] [--steps 40] [--ray]

Each run is a real job (LocalRuntime / TorchrunRuntime / RayRuntime) in its own process(es). Throughput is the
recipe's own `tokens_per_s` of the last step: real (non-padding) tokens of all ranks since the loop started /
seconds since the loop started (model loading and tokenization excluded). Start-up = seconds from launch to
the first logged step. Full fine-tuning, fp32, sequence <= 256, global batch 8, no mixing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

WORDS = ("the parcel refund invoice account login delivery late broken screen battery charge support agent "
         "order missing item warranty return label store app update crash payment card declined").split()


def make_records(n: int, seed: int) -> list[dict]:
    """Conversations of 10 to 200 words (about 20 to 256 tokens with the tiny tokenizers)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = rng.randint(10, 200)
        user = " ".join(rng.choice(WORDS) for _ in range(max(2, words // 4)))
        answer = " ".join(rng.choice(WORDS) for _ in range(words - words // 4))
        out.append({"id": f"r{i}", "messages": [{"role": "user", "content": user},
                                                {"role": "assistant", "content": answer}]})
    return out


def measure(runtime, cfg, threads: int) -> dict[str, float]:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the launched processes inherit it
    start = time.perf_counter()
    from mixforge.runtime import launch

    job = launch(cfg, runtime)
    metrics = Path(cfg.output_path) / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().strip()):
        if job.status not in ("queued", "running"):
            raise SystemExit(f"{job.id} ended early ({job.status}):\n{job.logs(30)}")
        time.sleep(0.1)
    first = time.perf_counter() - start
    status = job.wait()
    if status != "succeeded":
        raise SystemExit(f"{job.id} {status}:\n{job.logs(30)}")
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    last = [r for r in rows if "tokens_per_s" in r][-1]
    return {"tokens_per_s": last["tokens_per_s"], "startup_s": first, "wall_s": time.perf_counter() - start,
            "loss": last["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny-5m")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--ray", action="store_true", help="also Ray Train with 2 workers (needs the ray extra)")
    args = parser.parse_args()

    from mixforge.config import RunConfig, parse_overrides
    from mixforge.models.registry import resolve
    from mixforge.runtime.local import LocalRuntime
    from mixforge.runtime.torchrun import TorchrunRuntime

    root = Path(tempfile.mkdtemp(prefix="mixforge-bench-runtime-"))
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_records(args.steps * 8, seed=0)))
    model = resolve(args.preset)

    def cfg(name: str) -> RunConfig:
        return RunConfig(model=model, method="sft_full", data_path=str(data), output_path=str(root / name),
                         job_name=f"bench-{name}", data_mixing_enabled=False, tracking={"enabled": False},
                         overrides=parse_overrides({"max_steps": args.steps, "global_batch_size": 8,
                                                    "micro_batch_size": 8, "max_seq_len": 256,
                                                    "learning_rate": 1e-4, "log_every": 1}))

    runs = [("1 process, 1 thread", LocalRuntime(), 1), ("1 process, 2 threads", LocalRuntime(), 2),
            ("torchrun 2 processes x 1 thread", TorchrunRuntime(nproc_per_node=2), 1)]
    if args.ray:
        from mixforge.runtime.ray import RayRuntime

        runs.append(("Ray Train 2 workers x 1 thread", RayRuntime(num_workers=2), 1))
    print(f"{args.preset}, full fine-tuning, fp32, {args.steps} steps of 8 records (<= 256 tokens), no mixing; "
          f"load before: {os.getloadavg()[0]:.2f}")
    results = {}
    for i, (name, runtime, threads) in enumerate(runs):
        results[name] = r = measure(runtime, cfg(f"run{i}"), threads)
        print(f"  {name:34s} {r['tokens_per_s']:8,.0f} tokens/s   start-up {r['startup_s']:5.1f} s   "
              f"wall {r['wall_s']:5.1f} s   final loss {r['loss']:.4f}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
