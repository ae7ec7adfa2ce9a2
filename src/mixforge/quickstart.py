"""The main job: "tune without forgetting", end to end, offline, on the embedded default.

    summary = quickstart(output="runs/quickstart")        # what `mixforge quickstart` and `make demo` run

1. prepare the shipped customer-feedback data through the data pipeline (map, sanitize, transform, validate,
   filter, split) and show a few rows;
2. evaluate the shipped base model (`mixforge-tiny-base`) on the general benchmark and the domain test;
3. fine-tune it twice with the same budget: on domain data only (customer_data_percent 100) and mixed
   (customer_data_percent 50, the general categories at their default weights), through the real trainer,
   mixer and MLflow tracking;
4. evaluate both, print the forgetting table, write the HTML report and `summary.json`.

Every figure printed is measured in this run; nothing is cached from elsewhere or written by hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from mixforge.io.jsonl import read_jsonl

ASSETS = resources.files("mixforge.assets")
BASE_MODEL = "models/mixforge-tiny-base"
INSTRUCTION = "Classify this customer feedback: "  # the domain task's prompt (see assets/README.md)
MAPPING = {"question": "prompt", "answer": "label", "label": "label"}  # the assistant answers with the label


def asset(path: str) -> str:
    return str(ASSETS.joinpath(path))


def run_name(percent: float) -> str:
    return "domain-only" if percent >= 100 else f"mixed-{percent:g}"


def quickstart(
    *,
    output: str | Path = "runs/quickstart",
    method: str = "sft_full",
    percents: Sequence[float] = (100.0, 50.0),
    steps: int = 800,
    seed: int = 0,
    batch_size: int = 32,
    learning_rate: float | None = None,
    eval_limit: int | None = None,
    show: bool = True,
) -> dict[str, Any]:
    """Run the whole workflow on the embedded default and return the summary written to summary.json."""
    from rich.console import Console
    from rich.table import Table

    from mixforge.config import RunConfig, TrackingConfig, parse_overrides
    from mixforge.data.load import read_prepared
    from mixforge.data.pipeline import prepare
    from mixforge.eval.evaluator import evaluate
    from mixforge.eval.report import forgetting_report
    from mixforge.eval.tasks import EvalTask
    from mixforge.methods import parse_method, uses_lora
    from mixforge.mix.config import default_mixing_config
    from mixforge.train.recipe import run

    console = Console(quiet=not show)
    started = time.perf_counter()
    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    method = parse_method(method)
    base = asset(BASE_MODEL)
    store = f"sqlite:///{out / 'mlflow.db'}"

    # ---- 1. data: the pipeline prepares the domain task -----------------------------------------------------
    console.rule("[bold]1. prepare the domain data")
    data_dir = out / "data"
    raw = {split: _with_instruction(asset(f"domain/{split}.jsonl"), data_dir / "raw" / f"{split}.jsonl")
           for split in ("train", "validation", "test")}
    train_report = prepare([raw["train"], raw["validation"]], mapping=MAPPING,
                           method=method, model=base, out_dir=data_dir / "train", split=(0.9, 0.1, 0.0),
                           stratify=True, seed=seed, labels=_labels(), dedup="exact")
    test_report = prepare(raw["test"], mapping=MAPPING, method=method, model=base,
                          out_dir=data_dir / "test", labels=_labels(), dedup="none", quality=False)
    train_file, val_file = train_report.files["train"], train_report.files["validation"]
    test_file = next(iter(test_report.files.values()))
    console.print(train_report.table())
    for record in list(read_prepared(train_file))[:3]:
        console.print(f"  [dim]{record['id']}[/] {record['messages'][0]['content'][:90]!r} -> {record['label']!r}")

    # ---- 2. the base model on both benchmarks -----------------------------------------------------------
    console.rule("[bold]2. evaluate the base model")
    tasks = [
        # cloze style: the bare question as the user turn, each choice's text scored as the answer, normalized
        # by its length (summed log-likelihood favours short answers); the same scoring the base was built with
        EvalTask.multiple_choice("general", path=asset("benchmark/general_mc.jsonl"), shots=0, limit=eval_limit,
                                 answer_format="text", prompt_style="question"),
        EvalTask.classification("domain", path=test_file, labels=asset("domain/labels.txt"), limit=eval_limit),
    ]
    cache = out / "eval-cache"
    results = {"base": evaluate(base, tasks, cache_dir=cache, show_progress=show)}
    console.print(results["base"].table())

    # ---- 3. fine-tune: domain only, and mixed ---------------------------------------------------------------
    default_mix = default_mixing_config(base, method).to_dict()
    run_dirs: dict[str, str] = {}
    shares: dict[str, dict[str, float]] = {}
    for percent in percents:
        name = run_name(percent)
        console.rule(f"[bold]3. fine-tune: {name} (customer_data_percent {percent:g})")
        mixing = {**default_mix, "customer_data_percent": float(percent)}
        overrides = {"max_steps": steps, "global_batch_size": batch_size, "micro_batch_size": min(batch_size, 16),
                     "learning_rate": learning_rate or (2e-3 if uses_lora(method) else 1e-3),
                     "lr_scheduler": "cosine", "warmup_ratio": 0.05, "eval_every": max(steps // 4, 1), "seed": seed}
        if uses_lora(method):  # the domain brings words the base never saw: train the embeddings too
            overrides |= {"lora_rank": 16, "lora_alpha": 32, "lora_modules_to_save": ["embed_tokens"]}
        cfg = RunConfig(model=base, method=method, data_path=train_file, validation_path=val_file,
                        output_path=str(out / "runs" / name), job_name=name, data_mixing_enabled=percent < 100,
                        mixing=mixing if percent < 100 else None, overrides=parse_overrides(overrides),
                        tracking=TrackingConfig(experiment_name="mixforge-quickstart", tracking_uri=store,
                                                run_name=name))
        result = run(cfg, show_progress=show)
        if result.status != "succeeded":
            raise RuntimeError(f"run {name} ended {result.status}")
        run_dirs[name] = result.output_path
        shares[name] = {"customer_data_percent": float(percent),
                        **({k: v for k, v in mixing["categories"].items()} if percent < 100 else {})}
        results[name] = evaluate(result.final_path, tasks, cache_dir=cache, show_progress=show)

    # ---- 4. the forgetting report -------------------------------------------------------------------------
    console.rule("[bold]4. the forgetting report")
    report = forgetting_report(results, base="base", out_dir=out / "report", domain="domain", general="general",
                               general_metric="acc_norm", domain_metric="macro_f1", run_dirs=run_dirs,
                               title="mixforge quickstart: tune without forgetting",
                               seed=seed)
    summary = _summary(report, shares, method=method, steps=steps, seconds=time.perf_counter() - started,
                       base_name="base")
    summary["report_html"], summary["mlflow_store"] = str(report.html), store
    (out / "summary.json").write_text(json.dumps(summary, indent=1))

    table = Table("run", "customer %", "domain macro-F1", "general accuracy", "retention", "domain gain",
                  title="forgetting table (95% paired-bootstrap intervals in the HTML report)")
    for entry in summary["runs"]:
        percent = entry["customer_data_percent"]
        table.add_row(entry["name"], "-" if percent is None else f"{percent:g}", f"{entry['domain_macro_f1']:.3f}",
                      f"{entry['general_accuracy']:.3f}", f"{entry['retention']:.1%}", f"{entry['domain_gain']:+.3f}")
    console.print(table)
    console.print(f"report: {report.html}\nsummary: {out / 'summary.json'}")
    console.print(f"MLflow: mlflow ui --backend-store-uri {store}")
    console.print(f"took {summary['seconds']:.0f} s")
    return summary


def _with_instruction(src: str, dst: Path) -> str:
    """The raw feedback rows with the task's instruction in front: {"id", "prompt", "label"}."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", encoding="utf-8") as out:
        for _, row in read_jsonl(src):
            out.write(json.dumps({"id": row["id"], "prompt": INSTRUCTION + row["feedback"], "label": row["label"]})
                      + "\n")
    return str(dst)


def _labels() -> list[str]:
    return [line.strip() for line in Path(asset("domain/labels.txt")).read_text().splitlines() if line.strip()]


def _summary(report, shares: dict[str, dict[str, float]], *, method: str, steps: int, seconds: float,
             base_name: str) -> dict[str, Any]:
    runs = []
    for row in report.rows:
        runs.append({
            "name": row.run,
            "shares": shares.get(row.run, {}),
            "customer_data_percent": shares.get(row.run, {}).get("customer_data_percent"),  # None: the base
            "general_accuracy": row.general,
            "domain_macro_f1": row.domain,
            "retention": row.retention,
            "domain_gain": row.domain_gain,
            "intervals_95": {"general": list(row.general_ci), "domain": list(row.domain_ci),
                             "retention": list(row.retention_ci), "domain_gain": list(row.domain_gain_ci)},
        })
    return {"base": base_name, "method": method, "steps": steps, "seconds": round(seconds, 1), "runs": runs}
