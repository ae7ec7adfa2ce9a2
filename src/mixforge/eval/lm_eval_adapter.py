"""lm-evaluation-harness on mixforge checkpoints (needs the extra: `pip install 'mixforge[lm-eval]'`).

    run_lm_eval("runs/medical/final", ["mmlu", "gsm8k"])                  # any registered task
    run_lm_eval("base", ["my_task"], adapter="runs/x/adapter", include_path="tasks/")   # your own YAML tasks
    lm_eval_multiple_choice(checkpoint, EvalTask.multiple_choice(...))    # a mixforge MC task through lm-eval

The checkpoint is loaded by mixforge (base, merged, or base + adapter merged) and handed to the harness's
`HFLM` as a model object, so both tools score the same weights.

A mixforge multiple-choice task is exported as a harness task over a local JSONL file whose records carry
the exact prompt mixforge builds (`prompt`), the choice strings (`choices`) and the gold index (`answer`), with
`target_delimiter` set to mixforge's delimiter ("" under a chat template, " " in plain prompts). The harness
then requests the same (context, continuation) pairs mixforge scores, and its acc/acc_norm are defined as
mixforge's: that is why the two accuracies agree exactly (tested in tests/eval/test_lm_eval_adapter.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mixforge.eval.tasks import EvalTask, TaskResult


def _require_lm_eval():
    try:
        import lm_eval
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "the lm-evaluation-harness adapter needs the lm-eval extra: pip install 'mixforge[lm-eval]' "
            "(lm-eval[hf]==0.4.13)"
        ) from exc
    return lm_eval


def export_multiple_choice(tokenizer, task: EvalTask, out_dir: str | Path) -> str:
    """Write `task` as a harness task (YAML + JSONL) in `out_dir`; returns the harness task name."""
    import yaml

    from mixforge.eval.multiple_choice import load_questions, task_prompts
    from mixforge.io.atomic import write_text_atomic

    if task.kind != "multiple_choice":
        raise ValueError(f"only multiple-choice tasks export to lm-eval (task {task.name!r} is {task.kind})")
    out = Path(out_dir).resolve()
    questions = load_questions(task)
    prompts = task_prompts(tokenizer, task, questions)
    delimiters = {p.delimiter for p in prompts}
    name = f"mixforge_{task.name}"
    docs = [{"id": q.id, "subject": q.subject, "prompt": p.context, "choices": list(p.choices), "answer": q.answer}
            for q, p in zip(questions, prompts, strict=True)]
    data = write_text_atomic(out / f"{name}.jsonl", "\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n")
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "choices",
        "doc_to_target": "answer",
        "target_delimiter": delimiters.pop(),
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
        "metadata": {"version": 1.0},
    }
    write_text_atomic(out / f"{name}.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return name


def harness_model(checkpoint, *, batch_size: int = 8, max_length: int | None = None):
    """The harness's HFLM wrapping an already loaded mixforge checkpoint."""
    _require_lm_eval()
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=checkpoint.model, tokenizer=checkpoint.tokenizer, batch_size=batch_size,
                max_length=max_length)


def run_lm_eval(
    model: Any,
    tasks: list[str],
    *,
    adapter: str | None = None,
    include_path: str | Path | None = None,
    include_defaults: bool = True,
    num_fewshot: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    apply_chat_template: bool = False,
    log_samples: bool = False,
    precision: str = "fp32",
    device: str | None = None,
) -> dict[str, Any]:
    """Run harness tasks on a checkpoint (a name/directory, or a loaded `Checkpoint`); returns the harness's
    result dict (`["results"][task]` holds metrics such as "acc,none"). `include_defaults=False` skips
    indexing the harness's thousands of bundled tasks (seconds) when only `include_path` tasks run."""
    lm_eval = _require_lm_eval()
    from lm_eval.tasks import TaskManager

    from mixforge.eval.checkpoint import Checkpoint, load_checkpoint

    checkpoint = model if isinstance(model, Checkpoint) else load_checkpoint(
        str(model), adapter=adapter, precision=precision, device=device)
    manager = TaskManager(include_path=str(include_path) if include_path else None,
                          include_defaults=include_defaults)
    return lm_eval.simple_evaluate(
        model=harness_model(checkpoint, batch_size=batch_size),
        tasks=list(tasks),
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=manager,
        apply_chat_template=apply_chat_template,
        log_samples=log_samples,
    )


def lm_eval_multiple_choice(checkpoint, task: EvalTask, *, work_dir: str | Path, batch_size: int = 8) -> TaskResult:
    """Score a mixforge multiple-choice task through the harness; same shape as mixforge's own result."""
    started = time.perf_counter()
    name = export_multiple_choice(checkpoint.tokenizer, task, work_dir)
    out = run_lm_eval(checkpoint, [name], include_path=work_dir, include_defaults=False, num_fewshot=0,
                      batch_size=batch_size, log_samples=True)
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    examples = []
    for s in samples:
        doc = s["doc"]
        lls = [float(r[0]) for r in s["filtered_resps"]]
        examples.append({"id": doc["id"], "subject": doc.get("subject"), "gold": doc["answer"],
                         "correct": float(s["acc"]), "correct_norm": float(s["acc_norm"]), "logliks": lls})
    metrics = out["results"][name]
    return TaskResult(
        task=task.name,
        kind="multiple_choice",
        metrics={"acc": float(metrics["acc,none"]), "acc_norm": float(metrics["acc_norm,none"])},
        examples=examples,
        details={"harness": "lm-eval", "harness_task": name},
        settings=task.settings(),
        seconds=time.perf_counter() - started,
    )
