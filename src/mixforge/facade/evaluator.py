"""`Evaluator`: the seed's evaluation verb, a thin holder of a checkpoint name and settings over
`mixforge.eval.evaluator.evaluate`.

    from mixforge import Evaluator, EvalTask
    ev = Evaluator(model="runs/medical/final")   # hub id, directory, adapter directory, or model=BASE, adapter=DIR
    result = ev.evaluate([EvalTask.multiple_choice("general", path="mmlu_like.jsonl", shots=0),
                          EvalTask.classification("domain", path="voc_test.jsonl", labels="labels.txt")])
    print(result.table())
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mixforge.eval.tasks import EvalResult, EvalTask


class Evaluator:
    """Evaluates one checkpoint; each `evaluate` call loads the model only if some task is not cached."""

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        batch_size: int = 16,
        precision: str = "fp32",
        device: str | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        show_progress: bool = True,
    ) -> None:
        self.model, self.adapter = str(model), adapter
        self.batch_size, self.precision, self.device = batch_size, precision, device
        self.cache_dir, self.use_cache, self.show_progress = cache_dir, use_cache, show_progress

    def evaluate(self, tasks: Sequence[EvalTask] | EvalTask) -> EvalResult:
        from mixforge.eval.evaluator import evaluate

        tasks = [tasks] if isinstance(tasks, EvalTask) else list(tasks)
        return evaluate(self.model, tasks, adapter=self.adapter, batch_size=self.batch_size,
                        precision=self.precision, device=self.device, cache_dir=self.cache_dir,
                        use_cache=self.use_cache, show_progress=self.show_progress)

    def lm_eval(self, tasks: Sequence[str], **options) -> dict:
        """Run lm-evaluation-harness tasks on this checkpoint (see mixforge.eval.lm_eval_adapter.run_lm_eval)."""
        from mixforge.eval.lm_eval_adapter import run_lm_eval

        return run_lm_eval(self.model, list(tasks), adapter=self.adapter, batch_size=self.batch_size,
                           precision=self.precision, device=self.device, **options)
