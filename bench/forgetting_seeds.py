"""The forgetting evidence over training seeds: every quickstart arm once per seed, mean and min-max per arm.

    flock /tmp/mixforge-heavy.lock .venv/bin/python bench/forgetting_seeds.py --split test --seeds 0,1,2
    .venv/bin/python bench/forgetting_seeds.py --split dev --steps 300 --lr 2e-3     # choosing settings: dev only

Runs `mixforge.quickstart.quickstart(seeds=...)` (the same code as `mixforge quickstart --seeds 0,1,2`), then
prints two Markdown tables for the README: per arm, mean (min-max) of general retention, general accuracy,
domain macro-F1 and domain gain, with the acceptance targets; and general accuracy per subject (mean over
seeds) for the base and each arm. Settings are chosen on the dev half; the README reports the test half.
About 3 x the one-seed quickstart's time (the base is evaluated once, self-replay is generated once).

    .venv/bin/python bench/forgetting_seeds.py --merge runs/s0/summary.json runs/s1/summary.json runs/s2/summary.json

`--merge` combines the summary.json files of quickstarts run separately (one seed each, e.g. in parallel
processes to save wall time) into the same tables; they must share the benchmark half and the budget.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def markdown(summary: dict) -> str:
    base = summary["runs"][0]
    lines = [
        f"general benchmark `{summary['general_benchmark']}`, {summary['steps']} steps, seeds {summary['seeds']}, "
        f"{summary['seconds']:.0f} s in all",
        "",
        "| arm | replay | retention | general accuracy | domain macro-F1 | domain gain |",
        "|---|---|---|---|---|---|",
        f"| base | - | 100% | {base['general_accuracy']:.3f} | {base['domain_macro_f1']:.3f} | - |",
    ]
    for arm, s in summary["arms"].items():
        r, g, d, dg = (s[k] for k in ("retention", "general_accuracy", "domain_macro_f1", "domain_gain"))
        lines.append(
            f"| {arm} | {s['replay']} | {r['mean']:.1%} ({r['min']:.1%}-{r['max']:.1%}) "
            f"| {g['mean']:.3f} ({g['min']:.3f}-{g['max']:.3f}) | {d['mean']:.3f} ({d['min']:.3f}-{d['max']:.3f}) "
            f"| {dg['mean']:+.3f} ({dg['min']:+.3f}-{dg['max']:+.3f}) |"
        )
    lines += ["", "| target | value | wanted | met |", "|---|---|---|---|"]
    for name, t in summary["targets"].items():
        if t["value"] is not None:
            lines.append(f"| {name} | {t['value']:.3f} | {t['target']} | {'yes' if t['met'] else 'no'} |")
    subjects = list(base["general_per_subject"])
    lines += ["", "| general accuracy per subject | " + " | ".join(subjects) + " |",
              "|---|" + "---|" * len(subjects),
              "| base | " + " | ".join(f"{base['general_per_subject'][s]:.3f}" for s in subjects) + " |"]
    for arm, s in summary["arms"].items():
        lines.append(f"| {arm} | " + " | ".join(f"{s['general_per_subject'][x]:.3f}" for x in subjects) + " |")
    return "\n".join(lines)


def merge(paths: list[Path]) -> dict:
    """One summary from several quickstart summaries (disjoint seeds, same half and budget): every run kept,
    the per-arm aggregates and the targets recomputed by the quickstart's own functions."""
    from mixforge.quickstart import _aggregate, _targets

    summaries = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    for key in ("split", "steps", "general_benchmark", "method"):
        values = {str(s[key]) for s in summaries}
        if len(values) > 1:
            raise SystemExit(f"--merge: the summaries differ in {key}: {sorted(values)}")
    pairs = [(r["arm"], r["seed"]) for s in summaries for r in s["runs"][1:]]
    if len(set(pairs)) != len(pairs):
        raise SystemExit(f"--merge: an (arm, seed) run occurs twice: {sorted(pairs)}")
    seeds = sorted({seed for _, seed in pairs})
    bases = {json.dumps(s["runs"][0]["general_accuracy"]) for s in summaries}
    if len(bases) > 1:
        raise SystemExit("--merge: the base model scored differently in the summaries")
    runs = [summaries[0]["runs"][0]] + [r for s in summaries for r in s["runs"][1:]]
    arms = _aggregate(runs[1:])
    return {**summaries[0], "seeds": seeds, "seconds": sum(s["seconds"] for s in summaries),
            "runs": runs, "arms": arms, "targets": _targets(arms), "merged_from": [str(p) for p in paths]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/forgetting-seeds"))
    parser.add_argument("--split", choices=["dev", "test"], default="test")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--arm", action="append", help="arms (repeatable; default: the quickstart's, domain-only, curated-kl-all, self-kl-all)")
    parser.add_argument("--steps", type=int, default=None, help="default: the quickstart's")
    parser.add_argument("--lr", type=float, default=None, help="default: the quickstart's")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: robust beside other work)")
    parser.add_argument("--merge", type=Path, nargs="+", help="summary.json files of separate runs to combine")
    args = parser.parse_args()
    if args.merge:
        summary = merge(args.merge)
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        table = markdown(summary)
        (args.output / "seeds.md").write_text(table + "\n", encoding="utf-8")
        print(table)
        return

    import torch

    from mixforge.quickstart import DEFAULT_ARMS, DEFAULT_STEPS, quickstart

    torch.set_num_threads(args.threads)
    summary = quickstart(output=args.output, arms=args.arm or DEFAULT_ARMS, steps=args.steps or DEFAULT_STEPS,
                         seeds=[int(s) for s in args.seeds.split(",")], split=args.split,
                         learning_rate=args.lr, show=False)
    table = markdown(summary)
    (args.output / "seeds.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    print(json.dumps(summary["targets"], indent=1))


if __name__ == "__main__":
    main()
