"""Multiple-choice scoring speed: mixforge against lm-evaluation-harness, same task, same loaded model.

    .venv/bin/python bench/eval_speed.py                      # tiny-20m, 200 MMLU-like questions, 1 thread
    .venv/bin/python bench/eval_speed.py --preset tiny-5m --questions 400 --answer-format text

Both tools score the same prompts (mixforge exports its task to the harness, see
mixforge.eval.lm_eval_adapter), so accuracy must be identical; the figure of merit is questions per second,
end to end from a loaded model (the harness's time includes building its task from the exported files,
about what a user pays each run). mixforge scores a question's choices from one shared prompt pass; the harness
sends one request per choice (it does merge requests whose inputs coincide). Weights are random: speed does
not depend on them, and identical accuracy is checked on whatever the model predicts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

WORDS = ("river mountain city law cell energy market theory poem planet protein contract signal ocean "
         "engine village reaction language history culture").split()


def mmlu_like(n: int, seed: int) -> list[dict]:
    """Questions of MMLU's shape and length (about 40-60 words, four choices of a few words)."""
    rng = random.Random(seed)
    subjects = ["biology", "law", "physics", "history", "economics"]
    rows = []
    for i in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 50))) + "?"
        choices = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) for _ in range(4)]
        rows.append({"id": f"q{i}", "question": question, "choices": choices, "answer": rng.randrange(4),
                     "subject": subjects[i % len(subjects)]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny-20m")
    ap.add_argument("--model", help="Any model directory or hub id instead of a tiny preset.")
    ap.add_argument("--device", help="e.g. cuda (default: CPU).")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--shots", type=int, default=0)
    ap.add_argument("--answer-format", choices=["letter", "text"], default="letter")
    ap.add_argument("--chat", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steady figures on a shared machine)")
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from mixforge.eval.evaluator import evaluate_task, load_checkpoint
    from mixforge.eval.lm_eval_adapter import lm_eval_multiple_choice
    from mixforge.eval.tasks import EvalTask
    from mixforge.models.registry import resolve
    from mixforge.models.tiny import parameter_count

    work = Path(tempfile.mkdtemp(prefix="mixforge-eval-bench-"))
    data = work / "mmlu_like.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in mmlu_like(args.questions, seed=0)), encoding="utf-8")
    ckpt = load_checkpoint(args.model or resolve(args.preset), device=args.device)
    name = args.model or args.preset
    task = EvalTask.multiple_choice("general", path=str(data), shots=args.shots, answer_format=args.answer_format,
                                    chat=args.chat)

    # warm-up: one small pass of each (first-call allocations, lazy imports)
    small = task.model_copy(update={"limit": 4})
    evaluate_task(ckpt, small, batch_size=args.batch_size)
    lm_eval_multiple_choice(ckpt, small, work_dir=work / "warm", batch_size=args.batch_size)

    t0 = time.perf_counter()
    ours = evaluate_task(ckpt, task, batch_size=args.batch_size)
    t1 = time.perf_counter()
    theirs = lm_eval_multiple_choice(ckpt, task, work_dir=work / "harness", batch_size=args.batch_size)
    t2 = time.perf_counter()

    n = args.questions
    same = [e["correct"] for e in ours.examples] == [e["correct"] for e in theirs.examples]
    max_diff = max(abs(a - b) for x, y in zip(ours.examples, theirs.examples, strict=True)
                   for a, b in zip(x["logliks"], y["logliks"], strict=True))
    figures = {
        "model": name, "parameters": parameter_count(ckpt.model), "questions": n, "shots": args.shots,
        "answer_format": args.answer_format, "chat": args.chat, "batch_size": args.batch_size,
        "threads": args.threads,
        "mixforge_s": round(t1 - t0, 3), "lm_eval_s": round(t2 - t1, 3),
        "mixforge_q_per_s": round(n / (t1 - t0), 2), "lm_eval_q_per_s": round(n / (t2 - t1), 2),
        "speedup": round((t2 - t1) / (t1 - t0), 2),
        "mixforge_acc": ours.metrics["acc"], "lm_eval_acc": theirs.metrics["acc"],
        "mixforge_acc_norm": ours.metrics["acc_norm"], "lm_eval_acc_norm": theirs.metrics["acc_norm"],
        "identical_per_question": same, "max_loglik_diff": max_diff,
    }
    print(f"{name} ({figures['parameters']:,} parameters), {n} questions, {args.shots}-shot, "
          f"{args.answer_format} choices, chat={args.chat}, batch {args.batch_size}, {args.threads} threads")
    print(f"  mixforge : {figures['mixforge_q_per_s']:8.2f} questions/s ({figures['mixforge_s']} s)  "
          f"acc {ours.metrics['acc']:.4f}  acc_norm {ours.metrics['acc_norm']:.4f}")
    print(f"  lm-eval  : {figures['lm_eval_q_per_s']:8.2f} questions/s ({figures['lm_eval_s']} s)  "
          f"acc {theirs.metrics['acc']:.4f}  acc_norm {theirs.metrics['acc_norm']:.4f}")
    print(f"  speed-up : {figures['speedup']}x   identical per-question correctness: {same}   "
          f"max |loglik difference|: {max_diff:.2e}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
