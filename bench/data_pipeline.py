"""Data pipeline benchmark: a MedReason-sized set through load -> transform -> sanitize -> validate (token
lengths with the tiny-chat tokenizer and chat template) -> save, then the same at 1,000,000 rows, then fuzzy
dedup of 100,000 rows. Prints rows/s and peak RSS per stage.

    .venv/bin/python bench/data_pipeline.py                 # 33k (without, then with filters) + 1M + fuzzy 100k
    .venv/bin/python bench/data_pipeline.py --rows 33000 --skip-million --skip-fuzzy
    .venv/bin/python bench/data_pipeline.py --skip-million --skip-fuzzy     # the side-by-side line first

Side by side (issue 15): the whole `mixforge data prepare` process with a realistic tokenizer (49k BPE, ChatML)
against the closed product's pipeline, simulated in a process of its own (run_closed); target at least 2x.

Each measurement runs in a fresh process (RSS peaks do not carry over). The anchor (FACTS.md): the Nova
Forge SDK's local pipeline took 6.1 s end to end on the 33k set without its import, peak 348 MiB, and
checked no token lengths. Targets: 33k under 6 s; 1M under 1 GiB peak RSS; fuzzy dedup 100k under 60 s.
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

_WORDS = (
    "patient presents with acute chest pain shortness of breath fever cough history diabetes mellitus "
    "hypertension examination reveals elevated blood pressure heart rate respiratory distress diagnosis "
    "treatment therapy management cardiac pulmonary renal hepatic infection inflammation chronic symptoms "
    "laboratory findings imaging shows consistent likely most appropriate next step in management the a of "
    "and to is in for which following would be best initial medication dose mg daily risk factors because "
    "therefore mechanism pathway receptor inhibitor antibiotic culture biopsy lesion tumor benign malignant"
).split()
_MARKERS = ("System:", "Assistant:", "[EOS]")


def _sentences(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 22))]
        s = " ".join(words).capitalize()
        if rng.random() < 0.15:
            s = s.replace(" ", ": ", 1)  # colons are common in reasoning text ("Finding reasoning paths: ...")
        out.append(s + rng.choice([".", ".", ".", "?", ";"]))
    return out


def _text(rng: random.Random, pool: list[str], chars: int) -> str:
    parts, n = [], 0
    while n < chars:
        s = pool[rng.randrange(len(pool))]
        parts.append(s)
        n += len(s) + 1
    return " ".join(parts)


def generate(path: Path, rows: int, *, seed: int = 0) -> None:
    """MedReason-sized question/answer JSONL: questions ~300 characters, answers ~1,500 (lognormal spread, a
    few long ones), ~4% of rows with a literal 'System:', 'Assistant:' or '[EOS]'."""
    rng = random.Random(seed)
    pool = _sentences(rng, 5_000)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            q = _text(rng, pool, int(rng.lognormvariate(5.6, 0.35)))  # median ~270 chars
            a = _text(rng, pool, int(rng.lognormvariate(7.25, 0.45)))  # median ~1,400 chars
            if rng.random() < 0.04:
                marker = rng.choice(_MARKERS)
                a = f"{a[: len(a) // 2]} {marker} {a[len(a) // 2:]}"
            f.write(json.dumps({"question": q, "answer": a, "id": f"med-{i}"}) + "\n")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_prepare(path: str, out: str, max_seq_len: int, filters: bool) -> None:
    from mixforge.models.registry import load_tokenizer, model_info

    load_tokenizer("tiny-chat")  # build/load the preset and import transformers before the clock starts
    model_info("tiny-chat", with_lora_targets=False)
    from mixforge.data.pipeline import prepare

    rss0 = _peak_mib()
    t0 = time.perf_counter()
    report = prepare(path, mapping="question=question,answer=answer,id=id", method="sft_lora", model="tiny-chat",
                     out_dir=out, max_seq_len=max_seq_len, quality=filters, dedup="exact" if filters else "none")
    seconds = time.perf_counter() - t0
    rows = report.rows_read
    what = "with the default filters (quality, exact dedup)" if filters else "load -> save, no filters"
    print(f"\n{rows:,} rows, {os.path.getsize(path) / 2**20:,.0f} MiB, {what}: end to end {seconds:.2f} s "
          f"({rows / seconds:,.0f} rows/s), peak RSS {_peak_mib():,.0f} MiB (before the run {rss0:,.0f} MiB; "
          "tokenizer and transformers loaded)")
    print(f"{'stage':<10}{'rows in':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MiB':>14}")
    for s in report.stages:
        rate = f"{s.rows_per_s:,.0f}" if s.seconds else "-"
        print(f"{s.name:<10}{s.rows_in:>12,}{s.seconds:>10.2f}{rate:>12}{s.peak_rss / 2**20:>14,.0f}")
    v = report.validation
    print(f"sanitized: {report.sanitize_hits}; tokens: {v.rows_tokenized:,} rows tokenized (byte bound over "
          f"{max_seq_len}), {v.too_long:,} too long, {v.truncated_tokens:,} tokens would be truncated; "
          f"written {report.rows_written}")


def run_fuzzy(path: str, rows: int) -> None:
    from mixforge.data.filters import FuzzyDedupFilter, apply_filters
    from mixforge.data.load import iter_batches
    from mixforge.data.rows import Row

    texts = []
    for batch, _ in iter_batches(path):
        texts.extend(r.record["question"] + "\n" + r.record["answer"] for r in batch)
        if len(texts) >= rows:
            break
    texts = texts[:rows]
    rng = random.Random(1)
    for i in rng.sample(range(rows), rows // 50):  # 2% near-copies: one word changed
        words = texts[i - 1].split()
        words[rng.randrange(len(words))] = "changed"
        texts[i] = " ".join(words)
    # the pipeline's own path: FuzzyDedupFilter over batches of 2,048 rows (MinHash of a batch, then LSH)
    fuzzy = FuzzyDedupFilter(0.8)
    counts: dict = {}
    t0 = time.perf_counter()
    for start in range(0, rows, 2_048):
        batch = [Row(path, i + 1, {"id": str(i), "text": texts[i]}) for i in range(start, min(rows, start + 2_048))]
        apply_filters(batch, [fuzzy], counts)
    seconds = time.perf_counter() - t0
    dupes = counts["fuzzy_dedup"].get("dropped", 0)
    print(f"\nfuzzy dedup (MinHash 128 perms, LSH threshold 0.8) of {rows:,} rows: {seconds:.1f} s "
          f"({rows / seconds:,.0f} rows/s), {dupes:,} near-duplicates found ({rows // 50:,} planted), "
          f"peak RSS {_peak_mib():,.0f} MiB")


# ---- side by side: whole processes, the closed product's pipeline simulated -----------------------------------
CLOSED_ANCHOR = "measured on a quiet machine (FACTS.md): 10.5 s, 347 MiB whole process"
_KEYWORDS = ("System:", "Assistant:", "User:", "Bot:", "[EOS]", "<image>", "<video>")


def run_closed(path: str, out: str) -> None:
    """The closed product's local pipeline, as measured (FACTS.md), without its own SDK: the whole file becomes a
    Python list, every row is wrapped in the Bedrock conversation format, every text is checked for reserved
    keywords (problems reported, rows still saved), then all rows are written. Its SDK's import (3.4-5 s: boto3,
    sagemaker) is not reproduced here, only pandas', so this simulation is faster than the real thing."""
    import pandas  # noqa: F401 - the walkthrough's loader imports it

    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    records = [{"schemaVersion": "bedrock-conversation-2024", "system": [],
                "messages": [{"role": "user", "content": [{"text": r["question"]}]},
                             {"role": "assistant", "content": [{"text": r["answer"]}]}]} for r in rows]
    problems = sum(1 for r in records for m in r["messages"] for c in m["content"]
                   if any(k in c["text"] for k in _KEYWORDS))
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / "train.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    print(f"closed (simulated): {len(records):,} rows, {problems:,} with keyword problems (saved anyway)")


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one whole process, start to exit."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds, int(proc.stderr.strip().splitlines()[-1]) / 1024


def side_by_side(path: Path, work: Path, env: dict[str, str], repeats: int = 3) -> None:
    """`mixforge data prepare` with a realistic tokenizer (49k byte-level BPE, ChatML; bench/data_scale.py builds
    it) against the closed product's pipeline, whole processes, best of `repeats`."""
    from data_scale import build_model

    model = str(build_model())
    cli = [sys.executable, "-m", "mixforge", "data", "prepare", str(path), "--map",
           "question=question,answer=answer,id=id", "--model", model]
    runs = {
        "mixforge data prepare (no filters)": cli + ["--out", str(work / "sbs_mixforge"), "--no-quality",
                                                      "--dedup", "none"],
        "mixforge data prepare (default filters)": cli + ["--out", str(work / "sbs_mixforge_filters")],
        "closed product's data work (simulated)": [sys.executable, __file__, "--_child", "closed", str(path),
                                                   str(work / "sbs_closed")],
    }
    best = {name: min((_timed(cmd, env) for _ in range(repeats)), key=lambda r: r[0]) for name, cmd in runs.items()}
    print(f"\nside by side, {path.name}, whole process (best of {repeats}); closed product {CLOSED_ANCHOR}")
    for name, (seconds, rss) in best.items():
        print(f"  {name:<42}{seconds:>7.2f} s  peak {rss:>6,.0f} MiB  {10.5 / seconds:>5.2f}x the closed product")
    print("  (the simulation is a lower bound on the closed product: its SDK import and its own validation are "
          "not reproduced)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=33_000)
    p.add_argument("--million", type=int, default=1_000_000)
    p.add_argument("--fuzzy-rows", type=int, default=100_000)
    p.add_argument("--max-seq-len", type=int, default=4_096, help="token limit of the length check")
    p.add_argument("--skip-million", action="store_true")
    p.add_argument("--skip-fuzzy", action="store_true")
    p.add_argument("--skip-side-by-side", action="store_true", help="skip the whole-process comparison")
    p.add_argument("--million-filters", action="store_true", help="also run the 1M rows with the default filters")
    p.add_argument("--workdir", default=None)
    p.add_argument("--_child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:
        kind, path, rest = args._child[0], args._child[1], args._child[2:]
        if kind == "prepare":
            run_prepare(path, rest[0], int(rest[1]), rest[2] == "1")
        elif kind == "closed":
            run_closed(path, rest[0])
        else:
            run_fuzzy(path, int(rest[0]))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mixforge-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    if not args.skip_side_by_side:
        path = work / f"medreason_{args.rows}.jsonl"
        if not path.exists():
            generate(path, args.rows)
        side_by_side(path, work, env)
    jobs = [("prepare", args.rows, False), ("prepare", args.rows, True)]
    if not args.skip_million:
        jobs.append(("prepare", args.million, False))
        if args.million_filters:
            jobs.append(("prepare", args.million, True))
    if not args.skip_fuzzy:
        jobs.append(("fuzzy", args.fuzzy_rows, False))
    for kind, rows, filters in jobs:
        path = work / f"medreason_{rows}.jsonl"
        if not path.exists():
            t0 = time.perf_counter()
            generate(path, rows)
            print(f"generated {path} ({rows:,} rows) in {time.perf_counter() - t0:.1f} s")
        extra = ([str(work / f"out_{rows}"), str(args.max_seq_len), str(int(filters))] if kind == "prepare"
                 else [str(rows)])
        subprocess.run([sys.executable, __file__, "--_child", kind, str(path), *extra], check=True, env=env)


if __name__ == "__main__":
    main()
