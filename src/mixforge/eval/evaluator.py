"""Evaluate a checkpoint on several tasks: load it once (only if some task is not cached), run each task with
a progress bar, cache every result.

    from mixforge.eval.evaluator import evaluate
    from mixforge.eval.tasks import EvalTask
    result = evaluate("runs/medical/final", [EvalTask.multiple_choice("general", path="mmlu_like.jsonl")])
    result["general"].metrics["acc"]; result["general"].per_example("correct")

A checkpoint is a hub id, a model directory, or a peft adapter directory (its `adapter_config.json` names
the base) or `model=BASE, adapter=ADAPTER_DIR`. Adapters are merged into the base after loading (same
outputs, faster scoring); the adapter folder is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from mixforge.errors import ConfigError
from mixforge.eval.cache import ResultCache, checkpoint_fingerprint, task_key
from mixforge.eval.checkpoint import Checkpoint, load_checkpoint, split_adapter
from mixforge.eval.tasks import EvalResult, EvalTask, TaskResult, read_records
from mixforge.progress import progress_bar


def _runners() -> dict[str, Callable[..., TaskResult]]:
    from mixforge.eval.classification import evaluate_classification
    from mixforge.eval.generative import evaluate_generative
    from mixforge.eval.multiple_choice import evaluate_multiple_choice

    return {"multiple_choice": evaluate_multiple_choice, "classification": evaluate_classification,
            "generative": evaluate_generative}


def evaluate_task(checkpoint: Checkpoint, task: EvalTask, *, batch_size: int = 16,
                  progress: Callable[[int], None] | None = None) -> TaskResult:
    """Run one task on a loaded checkpoint (no cache)."""
    import torch

    with torch.inference_mode():
        return _runners()[task.kind](checkpoint.model, checkpoint.tokenizer, task, batch_size=batch_size,
                                     progress=progress)


def evaluate(
    model: str | Checkpoint,
    tasks: Sequence[EvalTask],
    *,
    adapter: str | None = None,
    batch_size: int = 16,
    precision: str = "fp32",
    device: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    show_progress: bool = True,
) -> EvalResult:
    """Evaluate `model` on `tasks`; cached results are reused, new ones stored (see mixforge.eval.cache)."""
    tasks = list(tasks)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"tasks: task names must be unique, got {names}")
    cache_root = Path(cache_dir) if cache_dir else None
    cache = ResultCache(cache_root)
    if isinstance(model, Checkpoint):
        checkpoint: Checkpoint | None = model
        name, fingerprint = model.name, model.fingerprint
    else:
        checkpoint = None
        base, adapter = split_adapter(str(model), adapter)
        name, fingerprint = str(model), checkpoint_fingerprint(base, adapter=adapter, cache_dir=cache_root)
    results: dict[str, TaskResult] = {}
    with progress_bar(show_progress) as bar:
        for task in tasks:
            key = task_key(task, checkpoint=fingerprint, settings={"precision": precision})
            hit = cache.get(key) if use_cache else None
            if hit is not None:
                results[task.name] = hit
                continue
            if checkpoint is None:
                checkpoint = load_checkpoint(base, adapter=adapter, precision=precision, device=device,
                                             cache_dir=cache_root)
            total = len(read_records(task.path, subset=task.subset, split=task.split))
            job = bar.add_task(f"{task.name} ({task.kind})", total=min(total, task.limit or total))
            result = evaluate_task(checkpoint, task, batch_size=batch_size,
                                   progress=lambda k, job=job: bar.advance(job, k))
            cache.put(key, result)
            results[task.name] = result
    return EvalResult(model=name, fingerprint=fingerprint, tasks=results)
